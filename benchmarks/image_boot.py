"""Boot each built-in image in the lab and print how long it takes (not a test).

Run as root on a host with the lab up (`pr-test-vm lab up`):

    /work/venv/bin/python benchmarks/image_boot.py [RECIPE ...] [--runs N]

For each recipe: build (or find in the cache), then N times: `virsh create` -> DHCP lease
-> first SSH banner -> `ssh root@guest true` with the injected key -> ACPI shutdown. Every
probe of the guest runs inside the lab's network namespace. Figures go to stdout as a
Markdown table; each boot's console log stays in /var/lib/libvirt/images/stagingvm-images-test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stagingvm.images import build_image, get_recipe
from stagingvm.settings import Settings
from tests.e2e import imagelab

MEMORY = {"tiny": 256}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="*", default=["tiny", "debian", "debian-docker"])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=Settings().data_dir)
    args = parser.parse_args()
    if not imagelab.lab_available():
        print("the lab is not up (run `pr-test-vm lab up` as root)", file=sys.stderr)
        return 2
    settings = Settings(data_dir=args.data_dir)
    key = imagelab.make_client_key(args.data_dir / "keys" / "bench_ed25519")
    rows = []
    for name in args.recipes:
        recipe = get_recipe(name)
        t0 = time.monotonic()
        disk = build_image(recipe, settings)
        build_s = time.monotonic() - t0
        manifest = json.loads((disk.parent / "manifest.json").read_text())
        samples: dict[str, list[float]] = {}
        for i in range(args.runs):
            vm = f"images-bench-{name}-{i}"[:40]
            with imagelab.booted(
                disk,
                vm,
                host_keys=manifest["facts"]["ssh_host_keys"],
                key=key,
                memory_mib=MEMORY.get(name, 1024),
                vcpus=2,
                timeout=600,
            ) as guest:
                t = time.monotonic()
                proc = guest.ssh(["true"])
                if proc.returncode != 0:
                    print(proc.stderr.decode(errors="replace"), file=sys.stderr)
                    return 1
                guest.timings["ssh_login"] = guest.timings["ssh_banner"] + time.monotonic() - t
                down = imagelab.shutdown_seconds(vm)
                guest.timings["acpi_shutdown"] = down if down is not None else float("nan")
            for k, v in guest.timings.items():
                samples.setdefault(k, []).append(v)
        rows.append((name, manifest["disk_bytes"], build_s, samples))
    load = os.getloadavg()[0]
    print(f"\nTCG in the lab, 2 vCPUs, load average {load:.1f}, {args.runs} run(s) each\n")
    print("| image | disk | build (cached?) | lease | SSH banner | ssh true | ACPI shutdown |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, size, build_s, s in rows:
        med = {k: statistics.median(v) for k, v in s.items()}
        print(
            f"| {name} | {size / 2**20:.0f} MiB | {build_s:.1f} s | {med['lease']:.1f} s | "
            f"{med['ssh_banner']:.1f} s | {med['ssh_login']:.1f} s | "
            f"{med['acpi_shutdown']:.1f} s |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
