#!/usr/bin/env python3
"""CPU cost of ``pr-test-vm list`` against ``virsh list --all``, on libvirt's test driver.

Both list ``test:///default`` (one domain, not stagingvm's: ``list`` shows none), in turns,
in the same run, so a busy machine weighs on both alike. The figure is the child's CPU time
(user + system, from ``getrusage``), not wall time, which on shared cores mostly measures the
wait for one. ``--also CHECKOUT`` measures another source tree (e.g. main) in the same run.

    python benchmarks/list_cpu.py [-n RUNS] [--also /work/main]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
URI = "test:///default"
# What the console script runs (`pr-test-vm = stagingvm.cli.app:main`).
MAIN = "import sys; sys.argv[0] = 'pr-test-vm'; from stagingvm.cli.app import main; main()"


def cpu_seconds(argv: list[str], env: dict[str, str], cwd: str) -> float:
    """User + system CPU time of one run of *argv*, started in a scratch directory (`-c`
    puts the current directory first on sys.path: it must not pick the checkout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{argv} failed ({done.returncode}):\n{done.stderr.decode()}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", "--runs", type=int, default=21, help="runs per command (21)")
    parser.add_argument("--also", type=Path, action="append", default=[], metavar="CHECKOUT")
    args = parser.parse_args()
    virsh = shutil.which("virsh")
    if virsh is None:
        raise SystemExit("virsh is not installed (apt-get install libvirt-clients)")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("STAGINGVM_")}
    base_env.pop("LIBVIRT_DEFAULT_URI", None)
    with tempfile.TemporaryDirectory(prefix="stagingvm-list-cpu-") as tmp:
        ours = ["list", "--uri", URI, "--data-dir", str(Path(tmp) / "data")]
        commands: dict[str, tuple[list[str], dict[str, str]]] = {
            f"virsh -c {URI} list --all": ([virsh, "-c", URI, "list", "--all"], base_env),
        }
        for label, tree in [
            ("pr-test-vm list", ROOT),
            *((f"pr-test-vm list at {p}", p) for p in args.also),
        ]:
            env = {**base_env, "PYTHONPATH": str(tree.resolve()), "HOME": tmp}
            commands[label] = ([sys.executable, "-c", MAIN, *ours], env)
        times: dict[str, list[float]] = {label: [] for label in commands}
        for argv, env in commands.values():  # warm the caches (.pyc, page cache)
            cpu_seconds(argv, env, tmp)
        for _ in range(args.runs):
            for label, (argv, env) in commands.items():
                times[label].append(cpu_seconds(argv, env, tmp))
    load = os.getloadavg()
    print(f"{args.runs} runs each, interleaved; load average {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f} at the end; {os.cpu_count()} CPUs")  # fmt: skip
    virsh_median = statistics.median(times[next(iter(commands))])
    for label, values in times.items():
        median = statistics.median(values)
        print(
            f"{label:<40} CPU median {median * 1000:6.1f} ms (min {min(values) * 1000:6.1f}) "
            f"= {median / max(virsh_median, 1e-6):5.1f}x virsh"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
