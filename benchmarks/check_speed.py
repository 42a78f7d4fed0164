"""Cold boot + check against revert + check, in one run, with the ratio (not a test).

Run as root inside the lab, from a checkout with the e2e images built:

    pr-test-vm lab exec -- .venv/bin/python benchmarks/check_speed.py [--image tiny] [--runs N]

For the image (an e2e image name, default the tiny guest): start a VM cold (define, boot, wait
for SSH login) and run a check on it; take the snapshot ``ready``; then N times: revert to it
and run the same check. "Check" is ``check_vm`` with the built-in policy narrowed to one
family: on the tiny guest (no docker) root's set-up refuses at once, so the figure is mostly
the two logins; on a lab design (``--image design-b``) it is the real set-up and probes.
Prints both figures, the ratio and the load average (``os.getloadavg()``) at start and end.
Everything is made in a run of its own (network, pool, data dir) and removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stagingvm.checks.vmcheck import check_vm, only_families
from stagingvm.policy import load_policy
from stagingvm.virt.connection import connect
from stagingvm.vm import snapshots
from stagingvm.vm.manager import Manager
from tests.e2e import harness


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="tiny", help="e2e image name (tests/e2e/harness)")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--family", default="secrets")
    args = parser.parse_args()
    conn = connect(harness.LAB_URI)
    run = harness.make_run(conn)
    manager = Manager(run.settings, conn=conn)
    policy = only_families(load_policy("builtin:ai-worker"), [args.family])
    load_before = os.getloadavg()
    try:
        harness.base(run, manager, args.image)
        name = run.vm_name("bench")

        def check() -> str:
            report = check_vm(manager, run.settings, policy, name)
            return report.verdict

        t = time.monotonic()
        manager.start(name, base=args.image)
        boot = time.monotonic() - t
        verdict = check()
        cold = time.monotonic() - t
        snapshots.create(manager, name)
        warm: list[float] = []
        reverts: list[float] = []
        for _ in range(args.runs):
            t = time.monotonic()
            snapshots.revert(manager, name)
            reverts.append(time.monotonic() - t)
            check()
            warm.append(time.monotonic() - t)
        manager.destroy(name)
    finally:
        failures = harness.clean_up(run, connect(harness.LAB_URI))
        if failures:
            print("clean-up: " + "; ".join(failures), file=sys.stderr)
    load_after = os.getloadavg()
    warm_med = statistics.median(warm)
    print(f"\nimage {args.image}, check --family {args.family} (verdict {verdict}), TCG in the lab")
    print(f"load average (1/5/15 min) at start {load_before}, at end {load_after}\n")
    print("| flow | seconds |")
    print("| --- | --- |")
    print(f"| cold: boot to SSH login | {boot:.1f} |")
    print(f"| cold: boot + check | {cold:.1f} |")
    print(f"| revert to a ready VM (median of {len(reverts)}) | {statistics.median(reverts):.1f} |")
    print(f"| revert + check (median of {len(warm)}) | {warm_med:.1f} |")
    print(f"| ratio cold / revert | {cold / warm_med:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
