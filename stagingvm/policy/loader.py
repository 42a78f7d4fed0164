"""Load and strictly validate policy files.

Every mistake is reported with the file, the line and the dotted key (``promise[2].judge``):
unknown keys, wrong types, missing keys, unknown families, oracles or placeholders. A policy
that loads is a policy the battery can run as written; nothing is silently ignored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import string
import tomllib
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from stagingvm.boundedread import POLICY_CAP, parse_toml, read_bounded
from stagingvm.errors import ConfigError, InvalidInputError
from stagingvm.names import USER_RE
from stagingvm.policy import model
from stagingvm.policy.toml_lines import KeyPath, key_lines, line_of

T = TypeVar("T")
_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
BUILTIN_PREFIX = "builtin:"


class PolicyError(ConfigError):
    """A policy file is invalid. Carries ``file``, ``line`` and ``key`` for the message."""

    def __init__(self, message: str, *, file: str, line: int | None, key: str | None) -> None:
        where = file if line is None else f"{file}:{line}"
        text = f"{where}: {key}: {message}" if key else f"{where}: {message}"
        super().__init__(text, hint="see `pr-test-vm help restrictions`, section 'Policy files'")
        self.file = file
        self.line = line
        self.key = key


def builtin_names() -> list[str]:
    """Names of the policies shipped in ``stagingvm/policy/builtin`` (``builtin:NAME``)."""
    root = resources.files("stagingvm.policy.builtin")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))


def load_policy(source: str | Path) -> model.Policy:
    """Load a policy from a path or from ``builtin:NAME``."""
    text_source = str(source)
    if text_source.startswith(BUILTIN_PREFIX):
        name = text_source[len(BUILTIN_PREFIX) :]
        if name not in builtin_names():
            raise PolicyError(
                f"no built-in policy {name!r} (have: {', '.join(builtin_names())})",
                file=text_source,
                line=None,
                key=None,
            )
        text = resources.files("stagingvm.policy.builtin").joinpath(f"{name}.toml").read_text()
        return parse_policy(text, source=text_source)
    path = Path(source)
    if not os.path.lexists(path):
        raise PolicyError("file not found", file=str(path), line=None, key=None)
    try:
        text = read_bounded(path, POLICY_CAP, "policy file")
    except InvalidInputError as exc:
        raise PolicyError(exc.message, file=str(path), line=None, key=None) from None
    return parse_policy(text, source=str(path))


def parse_policy(text: str, *, source: str = "<string>") -> model.Policy:
    try:
        data = parse_toml(text, "the policy")
    except InvalidInputError as exc:
        raise PolicyError(exc.message, file=source, line=None, key=None) from None
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise PolicyError(
            f"not valid TOML: {exc}",
            file=source,
            line=int(match.group(1)) if match else None,
            key=None,
        ) from None
    policy = _Reader(source, key_lines(text)).policy(data)
    return dataclasses.replace(policy, sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())


def load_policy_ref(spec: str, cwd: Path) -> tuple[model.Policy, str | None]:
    """The policy at git ``REF:PATH`` (``--policy-ref``), and a note when it fell back.

    When PATH does not exist at REF, the built-in ``ai-worker`` policy is used and the note
    says so (the caller prints it; the policy's ``source`` names it for the reports).
    """
    from stagingvm.policy.gitref import FALLBACK, read_at_ref

    found = read_at_ref(spec, cwd, POLICY_CAP)
    if found.text is None:
        note = f"{found.path} does not exist at {found.ref}: using the built-in policy {FALLBACK}"
        fallback = load_policy(FALLBACK)
        source = f"{FALLBACK} ({found.path} not at {found.ref})"
        return dataclasses.replace(fallback, source=source), note
    return parse_policy(found.text, source=found.source), None


class _Reader:
    """Walks the parsed document, checking each table against what it may contain."""

    def __init__(self, source: str, lines: dict[KeyPath, int]) -> None:
        self.source = source
        self.lines = lines

    # ---- errors and primitive checks -------------------------------------------------
    def error(self, path: KeyPath, message: str) -> PolicyError:
        key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        return PolicyError(message, file=self.source, line=line_of(self.lines, path), key=key)

    def table(self, value: object, path: KeyPath, allowed: set[str]) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.error(path, f"must be a table, not {_kind(value)}")
        for key in value:
            if key not in allowed:
                raise self.error(
                    (*path, key), f"unknown key (allowed here: {', '.join(sorted(allowed))})"
                )
        return value

    def get(
        self,
        table: Mapping[str, Any],
        path: KeyPath,
        key: str,
        kind: type[T],
        default: T | None = None,
    ) -> T:
        if key not in table:
            if default is None:
                raise self.error(path, f"missing required key {key!r}")
            return default
        value = table[key]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise self.error((*path, key), f"must be {kind.__name__}, not {_kind(value)}")
        return value  # type: ignore[no-any-return]

    def strings(
        self,
        table: Mapping[str, Any],
        path: KeyPath,
        key: str,
        check: Callable[[str], bool] | None = None,
        what: str = "",
        default: tuple[str, ...] = (),
    ) -> tuple[str, ...]:
        if key not in table:
            return default
        value = table[key]
        if not isinstance(value, list):
            raise self.error((*path, key), f"must be an array of strings, not {_kind(value)}")
        for item in value:
            if not isinstance(item, str):
                raise self.error((*path, key), f"must contain only strings, found {_kind(item)}")
            if check is not None and not check(item):
                raise self.error((*path, key), f"{item!r} is not {what}")
        return tuple(value)

    def placeholders(self, text: str, path: KeyPath, allowed: tuple[str, ...]) -> None:
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
        except ValueError as exc:
            raise self.error(path, f"bad placeholder syntax in {text!r}: {exc}") from None
        for name in fields:
            if name not in allowed:
                raise self.error(
                    path, f"unknown placeholder {{{name}}} (allowed: {', '.join(allowed)})"
                )

    # ---- tables -----------------------------------------------------------------------
    def policy(self, data: Mapping[str, Any]) -> model.Policy:
        top = self.table(
            data,
            (),
            {
                "version",
                "name",
                "description",
                "user",
                "sudo",
                "containers",
                "host",
                "probes",
                "promise",
            },
        )
        version = self.get(top, (), "version", int)
        if version != model.POLICY_VERSION:
            raise self.error(
                ("version",), f"unsupported version {version} (this stagingvm reads version 1)"
            )
        name = self.get(top, (), "name", str)
        if not _ID_RE.fullmatch(name):
            raise self.error(("name",), f"{name!r} is not a valid policy name")
        promises = top.get("promise", [])
        if not isinstance(promises, list):
            raise self.error(("promise",), "must be an array of tables ([[promise]])")
        parsed = tuple(self.promise(p, ("promise", i)) for i, p in enumerate(promises))
        seen: set[str] = set()
        for i, promise in enumerate(parsed):
            if promise.id in seen:
                raise self.error(("promise", i, "id"), f"duplicate promise id {promise.id!r}")
            seen.add(promise.id)
        return model.Policy(
            version=version,
            name=name,
            description=self.get(top, (), "description", str, ""),
            user=self.user(top.get("user"), ("user",)),
            sudo=self.sudo(top.get("sudo", {}), ("sudo",)),
            containers=self.containers(top.get("containers", {}), ("containers",)),
            host=self.host(top.get("host", {}), ("host",)),
            promises=parsed,
            probes=self.probes(top.get("probes", {}), ("probes",)),
            source=self.source,
        )

    def user(self, value: object, path: KeyPath) -> model.UserSpec:
        if value is None:
            raise self.error((), "missing required table [user]")
        if isinstance(value, dict) and "credential" in value:
            raise self.error(
                (*path, "credential"),
                "no longer part of the format: the user's key always arrives as the systemd "
                "credential stagingvm.authorized_keys.NAME (the name the guest side loads); "
                "delete this key",
            )
        t = self.table(value, path, {"name", "login", "groups_required", "groups_forbidden"})
        name = self.get(t, path, "name", str)
        if not USER_RE.fullmatch(name):
            raise self.error((*path, "name"), f"{name!r} is not a valid user name")
        login = self.get(t, path, "login", str, "ssh-key")
        if login != "ssh-key":
            raise self.error((*path, "login"), f"unsupported login {login!r} (only 'ssh-key')")

        def is_group(text: str) -> bool:
            return USER_RE.fullmatch(text) is not None

        return model.UserSpec(
            name=name,
            login=login,
            groups_required=self.strings(t, path, "groups_required", is_group, "a group name"),
            groups_forbidden=self.strings(t, path, "groups_forbidden", is_group, "a group name"),
        )

    def sudo(self, value: object, path: KeyPath) -> model.SudoSpec:
        t = self.table(value, path, {"allowed", "runas"})
        return model.SudoSpec(
            allowed=tuple(" ".join(s.split()) for s in self.strings(t, path, "allowed")),
            runas=self.strings(t, path, "runas", default=("root",)),
        )

    def containers(self, value: object, path: KeyPath) -> model.ContainerSpec:
        keys = {"image", "victim", "service", "secret_service"}
        t = self.table(value, path, keys)
        default = model.ContainerSpec()
        out = {k: self.get(t, path, k, str, getattr(default, k)) for k in sorted(keys)}
        for key in ("victim", "service", "secret_service"):
            if not _ID_RE.fullmatch(out[key]):
                raise self.error((*path, key), f"{out[key]!r} is not a valid container name")
        if not re.fullmatch(r"[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]+)?", out["image"]):
            raise self.error((*path, "image"), f"{out['image']!r} is not a valid image name")
        return model.ContainerSpec(**out)

    def host(self, value: object, path: KeyPath) -> model.HostSpec:
        t = self.table(value, path, {"docker", "helper", "registry", "setuid_allowed"})
        docker = self.get(t, path, "docker", str, "")
        helper = self.get(t, path, "helper", str, model.HostSpec.helper)
        for key, given in (("docker", docker), ("helper", helper)):
            if key in t and not re.fullmatch(r"(/[A-Za-z0-9._+-]+)+", given):
                raise self.error((*path, key), "must be an absolute path")
        return model.HostSpec(
            docker=docker,
            helper=helper,
            registry=self.get(t, path, "registry", str, model.HostSpec.registry),
            setuid_allowed=self.strings(
                t, path, "setuid_allowed", lambda s: s.startswith("/"), "an absolute path"
            ),
        )

    def probes(self, value: object, path: KeyPath) -> model.ProbeSelection:
        t = self.table(
            value, path, {"families", "exclude", "timeout", "concurrency", "destructive"}
        )
        families = self.strings(t, path, "families", default=model.FAMILIES)
        if families == ("all",):
            families = model.FAMILIES
        for fam in families:
            if fam not in model.FAMILIES:
                raise self.error(
                    (*path, "families"),
                    f"unknown probe family {fam!r} (known: {', '.join(model.FAMILIES)}, or 'all')",
                )
        timeout = self.get(t, path, "timeout", float, model.ProbeSelection.timeout)
        concurrency = self.get(t, path, "concurrency", int, model.ProbeSelection.concurrency)
        if not 1.0 <= timeout <= 600.0:
            raise self.error((*path, "timeout"), "must be between 1 and 600 seconds")
        if not 1 <= concurrency <= 64:
            raise self.error((*path, "concurrency"), "must be between 1 and 64")
        return model.ProbeSelection(
            families=families,
            exclude=self.strings(t, path, "exclude"),
            timeout=timeout,
            concurrency=concurrency,
            destructive=self.get(t, path, "destructive", bool, True),
        )

    def promise(self, value: object, path: KeyPath) -> model.Promise:
        t = self.table(value, path, {"id", "kind", "description", "commands", "judge"})
        pid = self.get(t, path, "id", str)
        if not _ID_RE.fullmatch(pid):
            raise self.error((*path, "id"), f"{pid!r} is not a valid id (a-z, 0-9, '-')")
        kind = self.get(t, path, "kind", str)
        if kind not in ("allow", "deny"):
            raise self.error((*path, "kind"), f"must be 'allow' or 'deny', not {kind!r}")
        commands = self.strings(t, path, "commands")
        if not commands:
            raise self.error((*path, "commands"), "needs at least one command")
        for command in commands:
            self.placeholders(command, (*path, "commands"), model.COMMAND_PLACEHOLDERS)
        jpath = (*path, "judge")
        j = self.table(t.get("judge", {}), jpath, {"exit_zero", "stdout_contains", "oracle"})
        contains = self.strings(j, jpath, "stdout_contains")
        for item in contains:
            self.placeholders(item, (*jpath, "stdout_contains"), model.JUDGE_PLACEHOLDERS)
        oracle = j.get("oracle")
        allowed = model.ALLOW_ORACLES if kind == "allow" else model.DENY_ORACLES
        if oracle is not None and (not isinstance(oracle, str) or oracle not in allowed):
            raise self.error(
                (*jpath, "oracle"),
                f"{oracle!r} is not an oracle for a {kind!r} promise "
                f"(choose from: {', '.join(allowed)})",
            )
        if kind == "deny" and oracle is None:
            raise self.error(
                jpath, "a 'deny' promise needs an oracle: an exit code alone is no verdict"
            )
        return model.Promise(
            id=pid,
            kind=kind,
            description=self.get(t, path, "description", str, ""),
            commands=commands,
            judge=model.Judge(
                exit_zero=self.get(j, jpath, "exit_zero", bool, kind == "allow"),
                stdout_contains=contains,
                oracle=oracle,
            ),
            line=line_of(self.lines, path),
        )


def _kind(value: object) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a float",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)
