#!/usr/bin/env python3
"""How fast does ``pr-test-vm`` answer? Prints the figures docs/performance.md records.

1. ``pr-test-vm --help`` as a fresh process (median of N), against ``python -c pass`` as the
   floor any Python program pays, and the modules ``--help`` must not load (libvirt, paramiko,
   rich.table).
2. ``pr-test-vm list --json`` as a fresh process over 100 stagingvm-owned domains on libvirt's
   test driver: a driver XML made here from stagingvm's own domain template and metadata
   (``stagingvm.virt.domain.render_domain``), plus 20 foreign domains that ``list`` must skip.

Targets (issue #2): --help < 0.3 s, list of 100 < 0.5 s.

    python benchmarks/cli_speed.py [-n RUNS]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# What the console script does (`pr-test-vm = stagingvm.cli.app:main`), run from the source tree.
CLI = [sys.executable, "-c", "import sys; from stagingvm.cli.app import main; sys.exit(main())"]
FORBIDDEN_FOR_HELP = ("libvirt", "paramiko", "rich.table")
HELP_TARGET, LIST_TARGET = 0.3, 0.5


@dataclass
class Timing:
    wall: list[float]  # what a user waits
    cpu: list[float]  # user + system time of the child: what the program itself costs


def run_times(argv: list[str], runs: int, env: dict[str, str]) -> Timing:
    """Run *argv* *runs* times; wall and CPU time per run.

    CPU time is reported too because on a busy machine (other jobs on few cores) the wall
    time mostly measures the wait for a core.
    """
    timing = Timing([], [])
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, check=False)
        timing.wall.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        timing.cpu.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
        if done.returncode != 0:
            raise SystemExit(f"{argv} failed ({done.returncode}):\n{done.stderr.decode()}")
    return timing


def modules_loaded_by_help(env: dict[str, str]) -> list[str]:
    probe = (
        "import sys\nfrom stagingvm.cli.app import main\n"
        "try:\n    sys.argv = ['pr-test-vm', '--help']; main()\n"
        "except SystemExit:\n    pass\n"
        f"print(' '.join(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN_FOR_HELP!r}"
        f" or m in {FORBIDDEN_FOR_HELP!r}), file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stderr.split()


def testdriver_xml(owned: int, foreign: int) -> str:
    """A test-driver world with *owned* stagingvm domains and *foreign* other domains."""
    from stagingvm.virt.domain import DomainSpec, Metadata, render_domain

    node = ET.Element("node")
    created = datetime(2026, 11, 1, tzinfo=UTC)
    for i in range(owned):
        spec = DomainSpec(
            name=f"bench-{i:03d}",
            uuid=f"00000000-0000-4000-8000-{i:012d}",
            domain_type="qemu",
            memory_mib=2048,
            vcpus=2,
            disk_path=f"/var/lib/libvirt/images/stagingvm/vm-bench-{i:03d}.qcow2",
            network="staging",
            mac=f"52:54:00:00:{i // 256:02x}:{i % 256:02x}",
            console_log=Path(f"/var/lib/staging-vm/vms/bench-{i:03d}/console.log"),
            metadata=Metadata(
                created_at=created + timedelta(minutes=i),
                base="hermes",
                base_volume="base-hermes-0123456789ab.qcow2",
                pr_ref=f"pull/{i}/head",
            ),
        )
        node.append(ET.fromstring(render_domain(spec)))
    for i in range(foreign):
        dom = ET.SubElement(node, "domain", type="test")
        ET.SubElement(dom, "name").text = f"foreign-{i:02d}"
        ET.SubElement(dom, "memory", unit="MiB").text = "512"
        os_el = ET.SubElement(dom, "os")
        ET.SubElement(os_el, "type", arch="x86_64").text = "hvm"
    return ET.tostring(node, encoding="unicode")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}, load average {load:.2f} at start"
    )


def report(label: str, timing: Timing, target: float | None = None) -> float:
    wall = statistics.median(timing.wall)
    cpu = statistics.median(timing.cpu)
    verdict = ""
    if target is not None:
        verdict = f"  target < {target:.1f} s: {'met' if wall < target else 'MISSED'}"
    print(
        f"{label:<34} wall median {wall:.3f} s (min {min(timing.wall):.3f}), "
        f"CPU median {cpu:.3f} s{verdict}"
    )
    return wall


def main() -> int:
    parser = argparse.ArgumentParser(description="Time pr-test-vm --help and list --json.")
    parser.add_argument("-n", "--runs", type=int, default=15, help="runs per figure (default 15)")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    env = {k: v for k, v in env.items() if not k.startswith("STAGINGVM_")}
    print(f"machine: {machine()}")
    print(f"runs per figure: {args.runs}\n")

    baseline = report("python -c pass", run_times([sys.executable, "-c", "pass"], args.runs, env))
    help_median = report(
        "pr-test-vm --help", run_times([*CLI, "--help"], args.runs, env), HELP_TARGET
    )
    print(f"{'':34} = {help_median / baseline:.1f}x python -c pass")
    loaded = modules_loaded_by_help(env)
    print(f"{'':34} heavy modules loaded by --help: {', '.join(loaded) or 'none'}")

    with tempfile.TemporaryDirectory(prefix="stagingvm-bench-") as tmp:
        xml_path = Path(tmp) / "bench-100.xml"
        xml_path.write_text(testdriver_xml(100, 20), encoding="utf-8")
        argv = [*CLI, "--uri", f"test://{xml_path}", "--data-dir", str(Path(tmp) / "data")]
        done = subprocess.run(
            [*argv, "list", "--json"], env=env, cwd=ROOT, capture_output=True, check=True
        )
        listed = json.loads(done.stdout)
        if len(listed) != 100:
            raise SystemExit(f"list --json returned {len(listed)} VMs, expected 100")
        list_median = report(
            "pr-test-vm list --json (100 VMs)",
            run_times([*argv, "list", "--json"], args.runs, env),
            LIST_TARGET,
        )
        report("pr-test-vm list (table, 100 VMs)", run_times([*argv, "list"], args.runs, env))
        # The test driver parses its whole XML world when the connection opens: a cost a
        # real libvirtd does not have. Measured apart so the CLI's own share is visible.
        open_only = [sys.executable, "-c", f"import libvirt; libvirt.open('test://{xml_path}')"]
        opened = report("  of which: open test driver (XML)", run_times(open_only, args.runs, env))
        print(f"{'':34} list --json without it: ~{list_median - opened:.3f} s wall")
        # virsh on the same world, in the same run: what a virsh user compares `list` with.
        virsh = shutil.which("virsh")
        if virsh is not None:
            ours = run_times([*argv, "list"], args.runs, env)
            theirs = run_times([virsh, "-c", f"test://{xml_path}", "list", "--all"], args.runs, env)
            report("virsh list --all (120 domains)", theirs)
            ratio = statistics.median(ours.cpu) / max(statistics.median(theirs.cpu), 1e-6)
            print(f"{'':34} pr-test-vm list CPU = {ratio:.1f}x virsh list CPU")

    ok = help_median < HELP_TARGET and list_median < LIST_TARGET and not loaded
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
