"""The hardened ai-worker design from one specification: the helper and its exact sudo rules.

A specification (``designfiles/hardened.json`` is the policy lab's; a user's comes from
``nix eval --json …config.stagingvm.aiWorker.spec``) names the restricted user, the
containers it may inspect/read logs of/restart, the images it may run and with which
limits, and the audit commands it may run as root. From it come:

- the helper ``ai-docker``: ``designfiles/ai-docker.in`` with the spec's values put in;
  nix/ai-worker.nix fills in the same template with the same values (tests/nix shows the
  two outputs are byte-identical);
- the sudo commands, each with exact arguments (``run IMAGE *`` is the one ``*``: the
  container's own command line, re-checked by the helper);
- /etc/sudoers.d/ai-worker for Debian, and the rule line nixpkgs'
  nixos/modules/security/sudo.nix renders from ``security.sudo.extraRules`` for NixOS.

Every value is checked against a narrow pattern first, so nothing in a spec can add a
shell word, a sudoers separator or a wildcard.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from stagingvm.boundedread import POLICY_CAP, parse_json, read_bounded
from stagingvm.errors import InvalidInputError

_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_CONTAINER = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:@-]{0,254}$")
_SIZE = re.compile(r"^[1-9][0-9]{0,5}[kmg]$")
_TOOL = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_ARG = re.compile(r"^[A-Za-z0-9_./+-]{1,128}$")
SPEC_KEYS = ("user", "containers", "images", "run", "logTail", "audit")
RUN_KEYS = ("memory", "pidsLimit", "tmpfsSize")


@dataclass(frozen=True)
class Spec:
    user: str
    containers: tuple[str, ...]
    images: tuple[str, ...]
    memory: str
    pids_limit: int
    tmpfs_size: str
    log_tail: int
    audit: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Paths:
    """Where one system keeps what the helper and the rules name."""

    bash: str
    docker: str
    path: str  # the helper's fixed PATH
    helper: str  # the file the sudo rules name
    tools: Mapping[str, str] | str  # audit tool -> its file, or the one directory of them

    def tool(self, name: str) -> str:
        if isinstance(self.tools, str):
            return f"{self.tools}/{name}"
        if name not in self.tools:
            raise InvalidInputError(
                f"audit command {name!r}: no known path on this layout",
                hint="known: " + ", ".join(sorted(self.tools)),
            )
        return self.tools[name]


DEBIAN = Paths(
    bash="/bin/bash",
    docker="/usr/bin/docker",
    path="/usr/sbin:/usr/bin:/sbin:/bin",
    helper="/usr/local/sbin/ai-docker",
    tools={
        "iptables": "/usr/sbin/iptables",
        "journalctl": "/usr/bin/journalctl",
        "sshd": "/usr/sbin/sshd",
        "ss": "/usr/bin/ss",
        "fail2ban-client": "/usr/bin/fail2ban-client",
    },
)
SYSTEM_SW = "/run/current-system/sw/bin"
# The policy lab's NixOS layout: docker's store path is filled in by the layout script
# (stagingvm.images.nixlayout's ``@docker@``), the helper is a system package.
NIXOS_LAB = Paths(
    bash="/bin/bash",
    docker="@docker@/bin/docker",
    path=SYSTEM_SW,
    helper=f"{SYSTEM_SW}/ai-docker",
    tools=SYSTEM_SW,
)


def _fail(what: str, value: object) -> InvalidInputError:
    return InvalidInputError(f"hardened spec: {what}: {value!r}", hint="docs/hardened-design.md")


def _strings(value: object, what: str, pattern: re.Pattern[str]) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(f"{what} must be a list of strings", value)
    for v in value:
        if not pattern.match(v):
            raise _fail(f"{what}: not allowed", v)
    if len(set(value)) != len(value):
        raise _fail(f"{what}: listed twice", value)
    return tuple(value)


def _int(value: object, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(f"{what} must be an integer from {low} to {high}", value)
    return value


def _size(value: object, what: str) -> str:
    if not isinstance(value, str) or not _SIZE.match(value):
        raise _fail(f"{what} must be a size like 256m", value)
    return value


def parse_spec(data: object) -> Spec:
    """Validate a decoded spec (the module's ``spec`` option, as JSON)."""
    if not isinstance(data, dict) or set(data) != set(SPEC_KEYS):
        raise _fail("keys must be exactly " + ", ".join(SPEC_KEYS), data)
    user = data["user"]
    if not isinstance(user, str) or not _USER.match(user):
        raise _fail("user", user)
    run = data["run"]
    if not isinstance(run, dict) or set(run) != set(RUN_KEYS):
        raise _fail("run must have exactly " + ", ".join(RUN_KEYS), run)
    audit = data["audit"]
    if not isinstance(audit, list):
        raise _fail("audit must be a list of argument lists", audit)
    commands = []
    for argv in audit:
        if not isinstance(argv, list) or not argv:
            raise _fail("audit: each command is a non-empty list", argv)
        commands.append(_strings(argv[:1], "audit program", _TOOL) + _strings_any(argv[1:]))
    return Spec(
        user=user,
        containers=_strings(data["containers"], "containers", _CONTAINER),
        images=_strings(data["images"], "images", _IMAGE),
        memory=_size(run["memory"], "run.memory"),
        pids_limit=_int(run["pidsLimit"], "run.pidsLimit", 1, 4096),
        tmpfs_size=_size(run["tmpfsSize"], "run.tmpfsSize"),
        log_tail=_int(data["logTail"], "logTail", 1, 100000),
        audit=tuple(commands),
    )


def _strings_any(args: list[Any]) -> tuple[str, ...]:
    """Audit arguments: narrow characters, repeats allowed (``-n 100 -t kernel``)."""
    for a in args:
        if not isinstance(a, str) or not _ARG.match(a):
            raise _fail("audit argument: not allowed", a)
    return tuple(args)


def load_spec(path: Path) -> Spec:
    """The spec in JSON file *path* (a regular file, bounded like a policy: issue 9)."""
    text = read_bounded(path, POLICY_CAP, "the hardened spec")
    try:
        data = parse_json(text, f"the hardened spec {path}")
    except ValueError as exc:
        raise InvalidInputError(f"cannot read the hardened spec {path}: {exc}") from exc
    return parse_spec(data)


def lab_spec() -> Spec:
    """The policy lab's spec (its fixture container and probe image)."""
    text = resources.files("stagingvm.checks.designfiles").joinpath("hardened.json").read_text()
    return parse_spec(json.loads(text))


def template() -> str:
    return resources.files("stagingvm.checks.designfiles").joinpath("ai-docker.in").read_text()


def _words(items: tuple[str, ...]) -> str:
    return " ".join(f"'{i}'" for i in items)


def helper(spec: Spec, paths: Paths) -> str:
    """The helper program: the template with the spec's values (as nix/ai-worker.nix does)."""
    values = {
        "@bash@": paths.bash,
        "@path@": paths.path,
        "@docker@": paths.docker,
        "@services@": _words(spec.containers),
        "@images@": _words(spec.images),
        "@logTail@": str(spec.log_tail),
        "@tmpfsSize@": spec.tmpfs_size,
        "@pidsLimit@": str(spec.pids_limit),
        "@memory@": spec.memory,
    }
    # One pass, left to right, replaced text never scanned again: what Nix's
    # builtins.replaceStrings does with the same lists.
    pattern = re.compile("|".join(re.escape(k) for k in values))
    return pattern.sub(lambda m: values[m.group(0)], template())


def sudo_image(image: str) -> str:
    """An image name as a sudoers argument: ``:`` is special there."""
    return image.replace(":", "\\:")


def commands(spec: Spec, paths: Paths) -> list[str]:
    """The sudo commands, in order; each runs as root with exactly these arguments."""
    h = paths.helper
    out = [f"{h} ps"]
    for c in spec.containers:
        out += [f"{h} inspect {c}", f"{h} logs {c}", f"{h} restart {c}"]
    out += [f"{h} run {sudo_image(i)} *" for i in spec.images]
    for argv in spec.audit:
        args = " ".join(argv[1:]) if len(argv) > 1 else '""'  # "" = no arguments at all
        out.append(f"{paths.tool(argv[0])} {args}")
    return out


def extra_config(spec: Spec) -> str:
    """What the module puts in ``security.sudo.extraConfig``."""
    return f"Defaults:{spec.user} !setenv, env_reset"


def nixos_rule_line(spec: Spec, paths: Paths) -> str:
    """The line sudo.nix renders for the module's rule: ``users``, ``host``
    ``=(runAs)``, then each command as ``NOPASSWD: command`` joined by ", "."""
    cmds = ", ".join(f"NOPASSWD: {c}" for c in commands(spec, paths))
    return f"{spec.user}\tALL=(root)\t{cmds}"


def sudoers_debian(spec: Spec) -> str:
    lines = [
        f"# Hardened design: {spec.user} is in no privileged group; this is all it may run as",
        "# root, with exact arguments (generated from the spec, stagingvm.checks.hardened).",
        extra_config(spec),
        *(f"{spec.user} ALL=(root) NOPASSWD: {c}" for c in commands(spec, DEBIAN)),
    ]
    return "\n".join(lines) + "\n"


def sudoers_nixos(spec: Spec, paths: Paths = NIXOS_LAB) -> str:
    """/etc/sudoers as sudo.nix writes it with the module's rule after the wheel rule."""
    return (
        "# Don't edit this file. Set the NixOS options \u2018security.sudo.configFile\u2019\n"
        "# or \u2018security.sudo.extraRules\u2019 instead.\n\n"
        "# Keep SSH_AUTH_SOCK so that pam_ssh_agent_auth.so can do its magic.\n"
        "Defaults env_keep+=SSH_AUTH_SOCK\n\n"
        '# "root" is allowed to do anything.\n'
        "root        ALL=(ALL:ALL) SETENV: ALL\n\n"
        "# extraRules\n"
        "%wheel\tALL=(ALL:ALL)\tSETENV: ALL\n"
        f"{nixos_rule_line(spec, paths)}\n\n"
        f"{extra_config(spec)}\n"
    )
