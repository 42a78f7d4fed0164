"""The policy: what a design promises about one restricted user, as plain frozen data.

A policy is design-independent: it says what the user must still be able to do and what it
must never achieve, not how a design arranges it. Promises may therefore list several
spellings of one operation (``docker ps``, ``sudo -n /usr/bin/docker ps``, a helper); an
"allow" promise is kept if one spelling works, a "deny" promise is broken if any spelling
achieves what the oracle watches for.
"""

from __future__ import annotations

from dataclasses import dataclass, field

POLICY_VERSION = 1

# Probe families of the battery (stagingvm.checks.catalog uses exactly these).
FAMILIES: tuple[str, ...] = (
    "control",
    "wrapper-parsing",
    "around-wrapper",
    "host-handover",
    "container-access",
    "sudo-wildcards",
    "root-client-files",
    "neighbour-sudo",
    "secrets",
    "helper-abuse",
    "general",
    "destructive",
)

# Oracles a promise may be judged by.
ALLOW_ORACLES: tuple[str, ...] = ("restarted", "image-created")
DENY_ORACLES: tuple[str, ...] = (
    "victim-write",
    "leak",
    "rootmark",
    "image-created",
    "registry-contacted",
)

# Placeholders a promise command may use; the values are shell-quoted when substituted.
COMMAND_PLACEHOLDERS: tuple[str, ...] = (
    "user",
    "home",
    "victim",
    "service",
    "secret_service",
    "image",
    "docker",
    "rootmark",
    "mark",
    "id",
    "registry",
)
# Placeholders a judge string may use in addition: facts only root learns during set-up.
JUDGE_PLACEHOLDERS: tuple[str, ...] = (*COMMAND_PLACEHOLDERS, "service_id", "service_log")


@dataclass(frozen=True)
class UserSpec:
    name: str
    login: str = "ssh-key"
    groups_required: tuple[str, ...] = ()
    groups_forbidden: tuple[str, ...] = ()


@dataclass(frozen=True)
class SudoSpec:
    """What ``sudo -n -l`` may list: each listed command must equal one allowed entry."""

    allowed: tuple[str, ...] = ()
    runas: tuple[str, ...] = ("root",)


@dataclass(frozen=True)
class ContainerSpec:
    """Containers root sets up for the run (all made fresh, all removed afterwards)."""

    image: str = "stagingvm/probe:latest"
    victim: str = "stagingvm-victim"
    service: str = "stagingvm-svc"
    secret_service: str = "stagingvm-othersvc"  # noqa: S105 (a container name)


@dataclass(frozen=True)
class HostSpec:
    docker: str = ""  # "" (the default): the real clients discovery finds; else this one
    # The hardened design's helper, as its sudo rules name it (docs/hardened-design.md).
    helper: str = "/usr/local/sbin/ai-docker"
    registry: str = "127.0.0.1:5999"
    setuid_allowed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Judge:
    exit_zero: bool = True
    stdout_contains: tuple[str, ...] = ()
    oracle: str | None = None


@dataclass(frozen=True)
class Promise:
    id: str
    kind: str  # "allow" (must succeed) or "deny" (must be refused)
    description: str
    commands: tuple[str, ...]
    judge: Judge
    line: int | None = None


@dataclass(frozen=True)
class ProbeSelection:
    families: tuple[str, ...] = FAMILIES
    exclude: tuple[str, ...] = ()
    timeout: float = 25.0
    concurrency: int = 8
    destructive: bool = True


@dataclass(frozen=True)
class Policy:
    version: int
    name: str
    description: str
    user: UserSpec
    sudo: SudoSpec = field(default_factory=SudoSpec)
    containers: ContainerSpec = field(default_factory=ContainerSpec)
    host: HostSpec = field(default_factory=HostSpec)
    promises: tuple[Promise, ...] = ()
    probes: ProbeSelection = field(default_factory=ProbeSelection)
    source: str = "<memory>"  # builtin:NAME, a file path, or "git REF:PATH"
    sha256: str = ""  # digest of the policy's text, named in every report
