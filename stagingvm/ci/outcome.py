"""What one ``pr-test-vm test`` run did: the record the run fills in, the reports read."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stagingvm.errors import CheckInfrastructureError, RestrictionViolatedError


@dataclass
class RunOutcome:
    """What one run did; also what the run-level reports are written from."""

    vm_name: str
    phase: str = "prepare"
    verdict: str = "error"  # passed | violated | error | interrupted | timeout
    base: str | None = None
    store_path: str | None = None
    build_log: Path | None = None
    error: str | None = None
    hint: str | None = None
    detail: list[str] = field(default_factory=list)
    kept: bool = False
    destroyed: bool = False
    cleanup_errors: list[str] = field(default_factory=list)
    report_errors: list[str] = field(default_factory=list)  # reports that could not be written
    durations: dict[str, float] = field(default_factory=dict)
    reports: list[Path] = field(default_factory=list)
    summary: str | None = None  # the check report's one-line summary, when the checks ran

    def raise_for_verdict(self) -> None:
        """``RestrictionViolatedError`` (10) or ``CheckInfrastructureError`` (11) unless passed."""
        if self.verdict == "passed":
            return
        if self.verdict == "violated":
            raise RestrictionViolatedError(
                f"restriction check failed on {self.vm_name}: {self.summary}",
                hint="see the Markdown/JUnit report for each failed check",
            )
        raise CheckInfrastructureError(
            f"could not check ({self.phase}): {self.error}", hint=self.hint
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "vm": self.vm_name,
            "verdict": self.verdict,
            "summary": self.summary,
            "phase": self.phase,
            "base": self.base,
            "store_path": self.store_path,
            "build_log": str(self.build_log) if self.build_log else None,
            "error": self.error,
            "hint": self.hint,
            "detail": self.detail,
            "kept": self.kept,
            "destroyed": self.destroyed,
            "cleanup_errors": self.cleanup_errors,
            "report_errors": self.report_errors,
            "durations": {k: round(v, 3) for k, v in self.durations.items()},
        }
