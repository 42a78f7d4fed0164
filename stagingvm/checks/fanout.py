"""Running probe scripts and deny-promise commands side by side, at the policy's concurrency.

Every job's evidence is stored as it arrives; a job that never returns within the overall
budget is stored as timed out ("never returned"), so a hung guest cannot stall the run.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
from collections.abc import Callable

from stagingvm.checks.model import Evidence, Probe
from stagingvm.policy.model import Promise

SLACK = 10.0  # client-side time-out = guest-side time-out + SLACK


def fan_out(
    as_user: Callable[[str, str], Evidence],
    command: Callable[[Promise, str], str],
    probes: list[Probe],
    deny: list[Promise],
    evidence: dict[str, Evidence],
    deny_ev: dict[tuple[str, str], Evidence],
    *,
    concurrency: int,
    timeout: float,
) -> None:
    """Run every probe and deny command through *as_user*; fill *evidence* and *deny_ev*."""
    jobs: dict[cf.Future[Evidence], tuple[str, str]] = {}
    pool = cf.ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="probe")
    try:
        for probe in probes:
            jobs[pool.submit(as_user, probe.id, probe.script)] = ("probe", probe.id)
        for promise in deny:
            for cmd in promise.commands:
                fut = pool.submit(as_user, promise.id, command(promise, cmd))
                jobs[fut] = (promise.id, cmd)
        overall = (timeout + 2 * SLACK) * (1 + len(jobs) / concurrency)
        stored: set[cf.Future[Evidence]] = set()
        with contextlib.suppress(cf.TimeoutError):
            for fut in cf.as_completed(jobs, timeout=overall):  # stored as they arrive
                _store(jobs[fut], fut.result(), evidence, deny_ev)
                stored.add(fut)
        for fut, key in jobs.items():
            if fut not in stored:
                late = (
                    fut.result()
                    if fut.done()
                    else Evidence(
                        None, "", "", overall, timed_out=True, transport_error="never returned"
                    )
                )
                _store(key, late, evidence, deny_ev)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _store(
    key: tuple[str, str],
    ev: Evidence,
    evidence: dict[str, Evidence],
    deny_ev: dict[tuple[str, str], Evidence],
) -> None:
    kind, ident = key
    if kind == "probe":
        evidence[ident] = ev
    else:
        deny_ev[(kind, ident)] = ev
