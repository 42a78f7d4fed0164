"""Check one running VM: the call ``pr-test-vm check``, ``pr-test-vm test`` and the tests share.

It logs in as root and as the policy's user (with the user's own key when stagingvm made
one: ``start --user-key``, ``access.user_credentials``), adapts the run to the guest's
accelerator and runs ``run_check``.
Under software emulation one ``docker run`` takes tens of seconds, so every time-out is
stretched by the settings' ``tcg_factor`` and at most ``EMULATED_CONCURRENCY`` probes run
at once (eight at once swamp an emulated 2-vCPU guest's docker daemon).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from stagingvm.progress import NULL_PROGRESS, Progress

if TYPE_CHECKING:
    from stagingvm.checks.model import CheckReport
    from stagingvm.policy.model import Policy
    from stagingvm.settings import Settings
    from stagingvm.vm.manager import Manager

EMULATED_CONCURRENCY = 3


def tuned(policy: Policy, *, emulated: bool, tcg_factor: float) -> tuple[Policy, float]:
    """The policy and time-out factor to run with on a guest (emulated or not)."""
    if not emulated:
        return policy, 1.0
    if policy.probes.concurrency > EMULATED_CONCURRENCY:
        probes = dataclasses.replace(policy.probes, concurrency=EMULATED_CONCURRENCY)
        policy = dataclasses.replace(policy, probes=probes)
    return policy, tcg_factor


def only_families(policy: Policy, families: Sequence[str]) -> Policy:
    """*policy* narrowed to these probe families (promises and controls still run)."""
    from stagingvm.errors import InvalidInputError
    from stagingvm.policy.model import FAMILIES

    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise InvalidInputError(
            f"unknown probe famil{'y' if len(unknown) == 1 else 'ies'}: {', '.join(unknown)}",
            hint=f"families: {', '.join(FAMILIES)}",
        )
    probes = dataclasses.replace(policy.probes, families=tuple(dict.fromkeys(families)))
    return dataclasses.replace(policy, probes=probes)


def check_vm(
    manager: Manager,
    settings: Settings,
    policy: Policy,
    name: str,
    *,
    progress: Progress = NULL_PROGRESS,
    teardown: bool = True,
    report: CheckReport | None = None,
) -> CheckReport:
    """Run *policy*'s checks on the running VM *name*; the report, whatever the verdict.

    *teardown* False leaves the oracles in place: for a VM that is destroyed right after
    (``pr-test-vm test``), or kept for a post-mortem, where they are the evidence. *report*:
    see ``run_check`` (filled in place, so an interrupted caller keeps what was found).
    """
    from stagingvm.checks import access
    from stagingvm.checks.runner import run_check

    root_target = manager.ssh_target(name, "root")
    user_target = manager.ssh_target(name, policy.user.name)  # its own key, if it has one
    emulated = manager.status(name).domain_type == "qemu"
    policy, factor = tuned(policy, emulated=emulated, tcg_factor=settings.timeouts.tcg_factor)
    sessions = max(2, policy.probes.concurrency)
    with (
        access.connect(root_target) as root,
        access.connect(user_target, max_sessions=sessions) as user,
    ):
        return run_check(
            policy,
            root=root,
            user=user,
            vm=name,
            progress=progress,
            timeout_factor=factor,
            teardown=teardown,
            report=report,
        )
