"""The verdict's own checks: the oracles' positive controls, and the error a verdict raises."""

from __future__ import annotations

from stagingvm.checks import oracles
from stagingvm.checks.fixtures import RunFacts
from stagingvm.checks.model import CheckReport
from stagingvm.checks.oracles import Observations
from stagingvm.errors import CheckInfrastructureError, RestrictionViolatedError


def positive_controls(obs: Observations, run: RunFacts, report: CheckReport) -> None:
    """Root planted one effect per oracle; if an oracle missed its own, it is blind."""
    checks = {
        "root-mark oracle": bool(oracles.rootmark_findings(obs, "ctl-oracle-rootmark", run.mark)),
        "victim oracle": bool(oracles.victim_findings(obs, "ctl-oracle-victim", run.mark)),
        "file-sweep oracle": any(
            u.endswith(":ctl-oracle-sweep") for u in obs.user_files_with_secrets
        ),
        "image oracle": bool(oracles.image_findings(obs, "ctl-oracle-image")),
        "registry oracle": bool(oracles.registry_findings(obs, "ctl-oracle-registry")),
    }
    for name, seen in checks.items():
        if not seen:
            report.infrastructure.append(f"positive control failed: the {name} saw nothing")
    report.infrastructure.extend(
        f"control failed: {f}" for f in oracles.rootmark_harness_faults(obs)
    )


def raise_for_verdict(report: CheckReport) -> None:
    """Raise the error matching the report's verdict (nothing when everything held)."""
    passed, failed = report.counts()
    if report.verdict == "violated":
        names = [p.probe_id for p in report.violations] + [
            p.promise_id for p in report.broken_promises
        ]
        raise RestrictionViolatedError(
            f"restriction violated: {', '.join(names[:8])}{' ...' if len(names) > 8 else ''} "
            f"({passed} passed, {failed} failed)",
            hint="see the evidence column; `pr-test-vm help restrictions` explains each probe "
            "and its fix",
        )
    if report.verdict == "inconclusive":
        first = report.inconclusive[0]
        raise CheckInfrastructureError(
            f"could not check: {first}",
            hint="the verdict is unknown; fix the guest or harness problem and run again",
        )
