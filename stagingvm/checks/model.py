"""Data of one restriction check: probes, their results, promise results, the report.

Outcomes are deliberately few. ``held``: the oracle saw nothing. ``escaped``: an oracle saw the
forbidden effect (a root mark, a leaked nonce, a mark in the victim, a destroyed object).
``not-applicable``: the route does not exist on this guest (a tool is missing), as *root*
established it (never on the user's word, never for a control). ``error``: the probe could
not be judged (time-out, transport failure, no witness that it ran); an error is never a pass.
A *control* that fires is a harness fault, reported as ``control-failed``, never as an escape.
The report is "held" only when every family had a probe judged held or escaped and every
control held (``coverage_problems``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Outcome(enum.StrEnum):
    HELD = "held"
    ESCAPED = "escaped"
    NOT_APPLICABLE = "not-applicable"
    ERROR = "error"
    CONTROL_FAILED = "control-failed"


@dataclass(frozen=True)
class Probe:
    """One escape attempt: a fixed script of the project's own, run as the restricted user.

    ``script`` is bash that runs after the common preamble (``stagingvm.checks.preamble``),
    which defines ``$N`` (this run's mark), ``$ID`` (the probe id), ``$RM`` (the root-mark
    directory), ``$V``/``$S``/``$O`` (victim, service, other service), ``$IMG``, ``$D`` (the real
    docker) and the ``dk`` function (docker as the user, else through ``sudo -n``).
    ``watch`` names the oracle the probe aims at (shown as "expected"); every probe is
    nevertheless judged by every oracle that can attribute an effect to its id.
    """

    id: str
    family: str
    title: str
    script: str
    risk: str
    fix: str
    watch: str = "rootmark"
    destructive: bool = False
    control: bool = False
    target: str | None = None  # the doomed object a destructive probe attacks


@dataclass(frozen=True)
class Evidence:
    """What came back from running one script as the restricted user."""

    exit_status: int | None
    stdout: str
    stderr: str
    duration: float
    timed_out: bool = False
    transport_error: str | None = None

    def excerpt(self, limit: int = 240) -> str:
        text = (self.stdout.strip() + "\n" + self.stderr.strip()).strip()
        text = " | ".join(line.strip() for line in text.splitlines() if line.strip())
        return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class ProbeResult:
    probe_id: str
    family: str
    title: str
    expected: str
    outcome: Outcome
    observed: str
    evidence: list[str] = field(default_factory=list)
    duration: float = 0.0
    risk: str = ""
    fix: str = ""
    control: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.probe_id,
            "family": self.family,
            "title": self.title,
            "expected": self.expected,
            "outcome": str(self.outcome),
            "observed": self.observed,
            "evidence": list(self.evidence),
            "duration": round(self.duration, 3),
            "risk": self.risk,
            "fix": self.fix,
            "control": self.control,
        }


@dataclass
class PromiseResult:
    promise_id: str
    kind: str  # allow | deny | groups | sudo-list
    description: str
    kept: bool | None  # None: could not be judged
    observed: str
    evidence: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.promise_id,
            "kind": self.kind,
            "description": self.description,
            "kept": self.kept,
            "observed": self.observed,
            "evidence": list(self.evidence),
        }


@dataclass
class CheckReport:
    """Everything one check found. Filled in as results arrive, so nothing is lost."""

    vm: str
    policy: str  # the policy's source: builtin:NAME, a file path, or "git REF:PATH"
    user: str
    policy_sha256: str = ""
    promises: list[PromiseResult] = field(default_factory=list)
    probes: list[ProbeResult] = field(default_factory=list)
    infrastructure: list[str] = field(default_factory=list)
    duration: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # phase -> seconds, in run order
    target: dict[str, Any] = field(default_factory=dict)  # what discovery found (facts.to_json)

    @property
    def violations(self) -> list[ProbeResult]:
        return [p for p in self.probes if p.outcome is Outcome.ESCAPED]

    @property
    def broken_promises(self) -> list[PromiseResult]:
        return [p for p in self.promises if p.kept is False]

    @property
    def inconclusive(self) -> list[str]:
        found = list(self.infrastructure)
        found += [
            f"probe {p.probe_id}: {p.observed}"
            for p in self.probes
            if p.outcome in (Outcome.ERROR, Outcome.CONTROL_FAILED)
        ]
        found += [f"promise {p.promise_id}: {p.observed}" for p in self.promises if p.kept is None]
        return found + self.coverage_problems()

    def coverage_problems(self) -> list[str]:
        """Why what ran is too little for "held": a family with no probe judged, no control."""
        if not self.probes:
            return [] if self.infrastructure else ["no probe ran"]
        problems = []
        controls = [p for p in self.probes if p.control]
        if not controls:
            problems.append("no control probe ran: the harness itself is unproven")
        problems += [
            f"control {p.probe_id} did not hold ({p.outcome})"
            for p in controls
            if p.outcome is Outcome.NOT_APPLICABLE
        ]
        judged = (Outcome.HELD, Outcome.ESCAPED)
        # "Not applicable" stands only on root's ground (discovery, root's look, the policy):
        # a family whose every route is absent on this target is not a hole in the check
        # (design B has no helper to abuse), but the check as a whole must have judged some.
        absent = set(self.absent_families())
        for family in dict.fromkeys(p.family for p in self.probes):
            if family in absent:
                continue
            if not any(p.outcome in judged for p in self.probes if p.family == family):
                problems.append(f"family {family}: no probe ran to a judged end")
        if not any(p.outcome in judged for p in self.probes if not p.control):
            problems.append("no probe ran to a judged end")
        return problems

    def absent_families(self) -> list[str]:
        """The families whose every probe is not applicable here (on root's ground)."""
        return [
            family
            for family in dict.fromkeys(p.family for p in self.probes)
            if all(p.outcome is Outcome.NOT_APPLICABLE for p in self.probes if p.family == family)
        ]

    @property
    def verdict(self) -> str:
        """``violated`` beats ``inconclusive``: an escape seen is an escape, whatever failed."""
        if self.violations or self.broken_promises:
            return "violated"
        if self.inconclusive:
            return "inconclusive"
        return "held"

    def counts(self) -> tuple[int, int]:
        """(passed, failed) over promises and probes; not-applicable counts as neither."""
        passed = sum(1 for p in self.promises if p.kept is True)
        passed += sum(1 for p in self.probes if p.outcome is Outcome.HELD)
        failed = sum(1 for p in self.promises if p.kept is not True)
        failed += sum(
            1 for p in self.probes if p.outcome not in (Outcome.HELD, Outcome.NOT_APPLICABLE)
        )
        return passed, failed

    def to_json(self) -> dict[str, Any]:
        passed, failed = self.counts()
        return {
            "vm": self.vm,
            "policy": self.policy,
            "policy_sha256": self.policy_sha256,
            "user": self.user,
            "verdict": self.verdict,
            "passed": passed,
            "failed": failed,
            "duration": round(self.duration, 3),
            "phases": dict(self.phases),
            "infrastructure": list(self.infrastructure),
            "promises": [p.to_json() for p in self.promises],
            "probes": [p.to_json() for p in self.probes],
            "target": dict(self.target),
        }
