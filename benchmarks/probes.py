#!/usr/bin/env python3
"""Benchmark: restriction probes per second on a booted guest, by transport.

Boots (or reuses) a policy-lab guest and runs the whole check three times, timing the phase
that runs the non-destructive probes and "deny" promises (set-up, collection and tear-down
are the same in every mode and reported apart):

- ``one-connection``: stagingvm's GuestSSH, one SSH connection, 8 concurrent sessions;
- ``ssh-per-probe``: one OpenSSH ``ssh`` process per probe, one after another (the way a
  shell script does it);
- ``ssh-per-probe-x8``: one ``ssh`` process per probe, 8 at a time.

Run it as root inside the lab (it talks to the guest's address):

    ip netns exec stagingvm-lab /work/venv/bin/python benchmarks/probes.py --design hardened

Figures go to docs/performance.md, section "Restriction checks".
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stagingvm.checks import access
from stagingvm.checks.runner import run_check
from stagingvm.checks.transport import SubprocessSSH
from stagingvm.policy import load_policy
from stagingvm.settings import NetworkSettings, Settings

USER = "ai-worker"


class PhaseClock:
    """A Progress that remembers how long each phase took."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}

    @contextlib.contextmanager
    def phase(self, description: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.phases[description] = time.monotonic() - started

    def note(self, message: str) -> None:
        return None


def settings(data_dir: Path) -> Settings:
    return Settings(
        network=NetworkSettings(
            name="checks-bench",
            bridge="vbr-checksb",
            subnet="192.168.202.0/24",
            dhcp_start="192.168.202.10",
            dhcp_end="192.168.202.250",
        ),
        pool_name="checks-bench",
        storage_pool=Path("/var/lib/libvirt/images/stagingvm-checks-bench"),
        data_dir=data_dir,
        memory=1024,
        vcpus=2,
        accel="auto",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--design", default="hardened", choices=["design-a", "design-b", "hardened"]
    )
    parser.add_argument("--data-dir", type=Path, default=Path("/var/lib/staging-vm-checks-bench"))
    parser.add_argument("--images-data-dir", type=Path, default=Path("/var/lib/staging-vm"))
    parser.add_argument("--keep", action="store_true", help="leave the VM running")
    parser.add_argument("--modes", default="one-connection,ssh-per-probe,ssh-per-probe-x8")
    args = parser.parse_args()

    from stagingvm.images import build_image, get_recipe
    from stagingvm.vm.manager import Manager

    s = settings(args.data_dir)
    manager = Manager(s)
    name = f"checks-bench-{args.design}"
    recipe = get_recipe(args.design)
    disk = build_image(recipe, Settings(data_dir=args.images_data_dir))
    base = f"checks-bench-{args.design}"
    manager.import_base(disk, base, source_key=recipe.content_hash())
    if name not in {vm.name for vm in manager.list()}:
        started = time.monotonic()
        manager.start(name, base=base, credentials=access.user_credentials(s, USER))
        print(f"booted {name} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    info = manager.status(name)
    factor = s.timeouts.tcg_factor if info.domain_type == "qemu" else 1.0
    policy = load_policy("builtin:ai-worker")
    root_target = manager.ssh_target(name, "root")
    user_target = manager.ssh_target(name, USER)
    results = []
    try:
        for mode in args.modes.split(","):
            concurrency = 1 if mode == "ssh-per-probe" else 8
            pol = dataclasses.replace(
                policy, probes=dataclasses.replace(policy.probes, concurrency=concurrency)
            )
            clock = PhaseClock()
            with access.connect(root_target) as root:
                if mode == "one-connection":
                    with access.connect(user_target, max_sessions=8) as user:
                        report = run_check(
                            pol, root=root, user=user, vm=name, progress=clock,
                            timeout_factor=factor,
                        )  # fmt: skip
                else:
                    user_shell = SubprocessSSH(
                        user_target.host,
                        USER,
                        user_target.key_path,
                        user_target.known_hosts,
                        user_target.port,
                    )
                    report = run_check(
                        pol, root=root, user=user_shell, vm=name, progress=clock,
                        timeout_factor=factor,
                    )  # fmt: skip
            phase = next(k for k in clock.phases if k.startswith("running ") and "probes" in k)
            jobs = len([p for p in report.probes if not p.probe_id.startswith("de-")]) + sum(
                len(p.commands) for p in policy.promises if p.kind == "deny"
            )
            seconds = clock.phases[phase]
            row = {
                "mode": mode,
                "design": args.design,
                "domain_type": info.domain_type,
                "jobs": jobs,
                "seconds": round(seconds, 2),
                "per_second": round(jobs / seconds, 2),
                "verdict": report.verdict,
                "whole_check_seconds": round(report.duration, 1),
                "phases": {k: round(v, 1) for k, v in clock.phases.items()},
            }
            results.append(row)
            print(json.dumps(row), file=sys.stderr)
    finally:
        if not args.keep:
            manager.destroy(name)
    print(json.dumps(results, indent=2))
    print("\n| mode | jobs | seconds | per second | verdict |\n|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['mode']} | {r['jobs']} | {r['seconds']} | {r['per_second']} | {r['verdict']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
