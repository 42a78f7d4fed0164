"""The policy side of ``pr-test-vm test``: ``stagingvm.checks`` behind ``ci.run``'s
``PolicyRunner`` protocol.

Loading happens first (``CheckPolicy.load``), so a bad policy file fails before a long build.
``credentials()`` makes (or reuses) the restricted user's own key pair and hands its public
half to ``Manager.start`` as the SMBIOS credential ``stagingvm.authorized_keys.USER``;
``run(vm)`` logs in as root and as that user over two connections and runs the checks, as
``pr-test-vm check`` does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stagingvm.progress import NULL_PROGRESS, Progress
from stagingvm.settings import Settings

if TYPE_CHECKING:
    from stagingvm.checks.model import CheckReport
    from stagingvm.policy.model import Policy
    from stagingvm.vm.manager import Manager


@dataclass(frozen=True)
class PolicyReport:
    """A ``CheckReport`` with the writers ``ci.run`` calls."""

    report: CheckReport

    @property
    def verdict(self) -> str:
        return self.report.verdict  # held | violated | inconclusive

    def summary(self) -> str:
        from stagingvm.checks.reports import summary_line, verdict_line

        return f"{verdict_line(self.report)}; {summary_line(self.report)}"

    def write_json(self, path: Path, *, run: Mapping[str, Any]) -> None:
        doc = {**self.report.to_json(), "run": dict(run)}
        path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")

    def write_junit(self, path: Path) -> None:
        from stagingvm.checks.reports import to_junit

        path.write_text(to_junit(self.report), encoding="utf-8")

    def write_markdown(self, path: Path) -> None:
        from stagingvm.checks.reports import to_markdown

        path.write_text(to_markdown(self.report), encoding="utf-8")


class CheckPolicy:
    def __init__(
        self,
        policy: Policy,
        settings: Settings,
        manager: Manager,
        *,
        progress: Progress = NULL_PROGRESS,
    ) -> None:
        self.policy = policy
        self.settings = settings
        self.manager = manager
        self.progress = progress
        self._report: CheckReport | None = None

    @classmethod
    def load(
        cls,
        source: str | Path,
        settings: Settings,
        manager: Manager,
        *,
        progress: Progress = NULL_PROGRESS,
    ) -> CheckPolicy:
        from stagingvm.policy import load_policy

        return cls(load_policy(source), settings, manager, progress=progress)

    @property
    def user(self) -> str:
        return self.policy.user.name

    def credentials(self) -> Mapping[str, str]:
        from stagingvm.checks.access import user_credentials

        return user_credentials(self.settings, self.user)

    def run(self, vm_name: str) -> PolicyReport:
        from stagingvm.checks.model import CheckReport
        from stagingvm.checks.vmcheck import check_vm

        # Filled in place, so an interrupted run still has what it found (``partial``).
        self._report = CheckReport(
            vm=vm_name,
            policy=self.policy.source,
            user=self.user,
            policy_sha256=self.policy.sha256,
        )
        # No tear-down: the VM is destroyed next, or kept with the oracles as evidence.
        report = check_vm(
            self.manager,
            self.settings,
            self.policy,
            vm_name,
            progress=self.progress,
            teardown=False,
            report=self._report,
        )
        return PolicyReport(report)

    def partial(self) -> PolicyReport | None:
        return PolicyReport(self._report) if self._report is not None else None
