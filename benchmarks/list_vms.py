"""How long ``Manager.list()`` takes over many stagingvm VMs, on libvirt's test driver.

Creates N VMs through ``Manager.start(wait=False)`` (network, pool, overlays, DHCP entries,
domains with metadata: the real code path) plus the test driver's foreign domain, then times
``list()`` several times and prints the median and the worst run. No daemon, no root.

    /work/venv/bin/python benchmarks/list_vms.py [N]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "unit" / "core"))

from corehelpers import TESTDRIVER_URI, ReadyProbes, add_base  # noqa: E402

from stagingvm.settings import Settings, SSHSettings  # noqa: E402
from stagingvm.vm import Manager  # noqa: E402


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        routes = base / "route"
        routes.write_text("Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n")
        settings = Settings(
            uri=TESTDRIVER_URI,
            storage_pool=base / "pool",
            data_dir=base / "data",
            ssh=SSHSettings(key=base / "keys" / "id_ed25519"),
        )
        manager = Manager(settings, domain_type="qemu", routes_path=routes, probes=ReadyProbes())
        add_base(manager)
        started = time.perf_counter()
        for i in range(count):
            manager.start(f"vm-{i:03d}", base="base", wait=False)
        setup = time.perf_counter() - started
        runs = []
        for _ in range(7):
            t0 = time.perf_counter()
            listed = manager.list()
            runs.append(time.perf_counter() - t0)
        assert len(listed) == count, len(listed)
        print(f"start (wait=False) x {count}: {setup:.2f} s ({setup / count * 1000:.1f} ms each)")
        print(
            f"list() over {count} VMs (+1 foreign): median {statistics.median(runs) * 1000:.1f} ms,"
            f" worst {max(runs) * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main()
