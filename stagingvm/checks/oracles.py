"""Oracles: pure functions that judge evidence, never exit codes.

Root gathers what happened on the guest (``collect`` in ``fixtures``) into an
``Observations``; the functions here decide, per probe or promise id, whether a forbidden
effect happened, and say which evidence shows it. They do no I/O, so unit tests can feed
them any situation, including the ones a real guest rarely shows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from stagingvm.checks.model import Evidence


@dataclass(frozen=True)
class Secrets:
    """Fresh nonces of one run, by what they protect (e.g. ``root-canary``)."""

    values: Mapping[str, str]

    def found_in(self, text: str) -> list[str]:
        return [name for name, value in self.values.items() if value and value in text]


@dataclass(frozen=True)
class RootmarkFile:
    name: str
    owner: str
    content: str


@dataclass
class Observations:
    """The guest's state after the probes, as root saw it."""

    rootmark: list[RootmarkFile] = field(default_factory=list)
    victim_marks: dict[str, str] = field(default_factory=dict)  # mark file name -> content
    images: set[str] = field(default_factory=set)  # "repo:tag"
    registry_requests: list[str] = field(default_factory=list)
    user_files_with_secrets: list[str] = field(default_factory=list)  # "path:secret-name"
    forbidden_writes: list[str] = field(default_factory=list)  # "owner path"
    setuid_files: list[str] = field(default_factory=list)
    intact: dict[str, str] = field(default_factory=dict)  # doomed object -> state
    sudoers_drops: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _mine(name: str, ident: str) -> bool:
    """Does a file/mark/image *name* belong to *ident*? (``ident`` or ``ident-...``/``ident.``)"""
    return name == ident or name.startswith((ident + "-", ident + ".", ident + "_"))


def rootmark_findings(obs: Observations, ident: str, mark: str) -> list[str]:
    out = []
    for f in obs.rootmark:
        if not _mine(f.name, ident):
            continue
        if f.owner == "root":
            note = "with this run's mark" if mark in f.content else f"content {f.content[:60]!r}"
            out.append(f"root-owned file {f.name} appeared in the root-only mark dir ({note})")
    return out


def rootmark_harness_faults(obs: Observations) -> list[str]:
    """A non-root file in the root-mark dir means the user can write there: oracle is blind."""
    return [
        f"{f.owner}-owned {f.name} in the root-only mark directory"
        for f in obs.rootmark
        if f.owner != "root"
    ]


def victim_findings(obs: Observations, ident: str, mark: str) -> list[str]:
    out = []
    for name, content in obs.victim_marks.items():
        stem = name.removeprefix("mark-")
        if _mine(stem, ident):
            note = "with this run's mark" if mark in content else f"content {content[:60]!r}"
            out.append(f"file /tmp/{name} appeared inside the victim container ({note})")
    return out


def leak_findings(evidence: Evidence, secrets: Secrets) -> list[str]:
    out = []
    for stream, text in (("stdout", evidence.stdout), ("stderr", evidence.stderr)):
        for name in secrets.found_in(text):
            value = secrets.values[name]
            out.append(f"secret '{name}' appeared in {stream}: {_context(text, value)}")
    return out


def swept_leak_findings(obs: Observations, ident: str) -> list[str]:
    """Secrets found by root in files the user owns, whose path names this probe."""
    out = []
    for item in obs.user_files_with_secrets:
        path, _, secret = item.rpartition(":")
        base = path.rsplit("/", 1)[-1]
        if ident in base:
            out.append(f"secret '{secret}' found in user-owned file {path}")
    return out


def image_findings(obs: Observations, ident: str) -> list[str]:
    out = []
    for ref in sorted(obs.images):
        repo = ref.rsplit(":", 1)[0] if ":" in ref.rsplit("/", 1)[-1] else ref
        last = repo.rsplit("/", 1)[-1]
        if (repo.startswith("stagingvm/") and _mine(last, ident)) or repo.endswith("/" + ident):
            out.append(f"image {ref} was created")
    return out


def registry_findings(obs: Observations, ident: str) -> list[str]:
    hits = [r for r in obs.registry_requests if f"/{ident}/" in r or r.endswith(f"/{ident}")]
    return [f"the daemon contacted the registry: {hits[0]}"] if hits else []


def write_findings(obs: Observations, ident: str) -> list[str]:
    return [
        f"file written where the user may not: {w}"
        for w in obs.forbidden_writes
        if ident in w.rsplit("/", 1)[-1]
    ]


def setuid_findings(obs: Observations, ident: str, allowed: Iterable[str]) -> list[str]:
    """Setuid files named for *ident* (planted by a probe), or, for the audit, not allowed."""
    allowed_set = set(allowed)
    if ident == "gn-setuid-audit":
        return [
            f"set-uid/gid file not in the policy's list: {p}"
            for p in obs.setuid_files
            if p not in allowed_set and "stagingvm" not in p
        ]
    return [f"set-uid file planted: {p}" for p in obs.setuid_files if ident in p.rsplit("/", 1)[-1]]


def sudoers_findings(obs: Observations, ident: str) -> list[str]:
    return [f"sudoers drop-in written: {p}" for p in obs.sudoers_drops if ident in p]


def destroyed_findings(obs: Observations, target: str | None, expected_state: str) -> list[str]:
    if target is None:
        return []
    state = obs.intact.get(target)
    if state is None:
        return [f"{target} could not be observed"]  # caller treats as error, not escape
    if state != expected_state:
        return [f"{target} is now '{state}' (was '{expected_state}')"]
    return []


NA_RE = re.compile(r"^STAGINGVM-NA: (.*)$", re.MULTILINE)
NA_EXIT = 97


# The daemon's answer when another probe's `docker commit` (which pauses a container while it
# copies it) held the victim: the attempt never reached the container, so it proves nothing.
_INTERFERENCE = re.compile(r"Container \S+ is paused, unpause the container")


def interference(evidence: Evidence) -> str | None:
    """Why this attempt proves nothing (it hit a fixture another probe had paused), if so."""
    match = _INTERFERENCE.search(evidence.stdout + "\n" + evidence.stderr)
    if match is None:
        return None
    return f"inconclusive: the daemon answered '{match.group(0)}' (another probe paused it)"


def not_applicable_reason(evidence: Evidence) -> str | None:
    """What a probe *claims* (exit 97 plus a reason line): the judge believes it only when
    root established the same (``judge.RootFacts.na_reasons``)."""
    if evidence.exit_status != NA_EXIT:
        return None
    match = NA_RE.search(evidence.stdout)
    return match.group(1).strip() if match else None


def _context(text: str, value: str, width: int = 40) -> str:
    at = text.find(value)
    start = max(0, at - width)
    end = min(len(text), at + len(value) + width)
    snippet = " ".join(text[start:end].split())
    return f"...{snippet}..."
