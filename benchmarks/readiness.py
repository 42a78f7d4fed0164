"""Readiness benchmark: how soon after sshd answers does `start --wait` return?

Run as root inside the lab (it talks to guest addresses):

    ip netns exec stagingvm-lab /work/venv/bin/python benchmarks/readiness.py [--rounds 2]

For each round it boots the tiny guest twice, side by side:

* **stagingvm**: ``Manager.start(wait=True)`` (what ``pr-test-vm start`` runs).
* **baseline**, the old way: a plain copy of the disk, ``virt-install --import
  --noautoconsole``, then a shell-style loop that runs ``virsh net-dhcp-leases`` once a second
  until the MAC has an address, then ``ssh -o BatchMode=yes`` once a second until it works
  (with a prepared known_hosts file: host keys are checked in the baseline too).

An independent prober thread watches each guest: it learns the address from the network's
DHCP host entries or leases, then tries TCP port 22 every 50 ms and records when sshd first
accepts and sends its banner. Printed figures (never asserted):

* readiness latency = when the start returned - when sshd first accepted (target <= 0.25 s);
* start overhead = from the call until the domain runs (define + overlay + start; target
  <= 0.3 s). For stagingvm that is the end of its "starting" phase; for the baseline it is
  the disk copy plus virt-install until the domain runs.

``--write-doc`` replaces the "Readiness" section of docs/performance.md with the results.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

import libvirt  # noqa: E402

from stagingvm.lab import netns  # noqa: E402
from stagingvm.virt.accel.accel import resolve_accel  # noqa: E402
from stagingvm.virt.connection import connect  # noqa: E402
from stagingvm.vm.manager import Manager  # noqa: E402
from tests.e2e.harness import LAB_NAMESPACE, Run, build, clean_up, make_run  # noqa: E402

PROBE_INTERVAL = 0.05


class Prober(threading.Thread):
    """Watches domain *name*: when it runs, its address, and when port 22 first answers."""

    def __init__(self, conn: libvirt.virConnect, network: str, name: str) -> None:
        super().__init__(daemon=True)
        self.conn, self.network, self.name = conn, network, name
        self.running_at: float | None = None
        self.ip: str | None = None
        self.accepted_at: float | None = None
        self.stop = threading.Event()

    def _mac(self) -> str | None:
        try:
            dom = self.conn.lookupByName(self.name)
        except libvirt.libvirtError:
            return None
        # Running, not merely active: stagingvm starts QEMU paused until the DHCP entry is in.
        if self.running_at is None and dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING:
            self.running_at = time.monotonic()
        mac = ET.fromstring(dom.XMLDesc(0)).find("devices/interface/mac")
        return mac.get("address") if mac is not None else None

    def _address(self, mac: str) -> str | None:
        try:
            net = self.conn.networkLookupByName(self.network)
            for host in ET.fromstring(net.XMLDesc(0)).iter("host"):
                if (host.get("mac") or "").lower() == mac.lower() and host.get("ip"):
                    return host.get("ip")
            for lease in net.DHCPLeases():
                if lease["mac"].lower() == mac.lower():
                    return str(lease["ipaddr"])
        except libvirt.libvirtError:
            return None
        return None

    def _accepts(self, ip: str) -> bool:
        try:
            with socket.create_connection((ip, 22), timeout=0.5) as sock:
                sock.settimeout(1.0)
                return sock.recv(4).startswith(b"SSH-")
        except OSError:
            return False

    def run(self) -> None:
        mac = None
        while not self.stop.is_set() and self.accepted_at is None:
            started = time.monotonic()
            if mac is None or self.running_at is None:
                mac = self._mac()
            if mac is not None and self.ip is None:
                self.ip = self._address(mac)
            if self.ip is not None and self._accepts(self.ip):
                self.accepted_at = time.monotonic()
                return
            self.stop.wait(max(0.0, PROBE_INTERVAL - (time.monotonic() - started)))


class PhaseClock:
    """A Progress that records when each phase ends (the "starting" phase = domain runs)."""

    def __init__(self) -> None:
        self.starts: dict[str, float] = {}
        self.ends: dict[str, float] = {}
        self.notes: list[str] = []

    @contextlib.contextmanager
    def phase(self, description: str) -> Iterator[None]:
        self.starts[description] = time.monotonic()
        yield
        self.ends[description] = time.monotonic()

    def breakdown(self, t0: float) -> str:
        return ", ".join(
            f"{name} {self.starts[name] - t0:.2f}..{end - t0:.2f}"
            for name, end in sorted(self.ends.items(), key=lambda item: item[1])
        )

    def note(self, message: str) -> None:
        self.notes.append(message)


@dataclass
class Sample:
    overhead: float
    latency: float
    boot_to_ssh: float


@dataclass
class Results:
    stagingvm: list[Sample] = field(default_factory=list)
    baseline: list[Sample] = field(default_factory=list)


def run_stagingvm_cli(run: Run, manager: Manager, name: str) -> Sample:
    """``pr-test-vm start NAME --base tiny`` in a fresh process (waits by default)."""
    prober = Prober(manager.conn, run.settings.network.name, name)
    prober.start()
    t0 = time.monotonic()
    try:
        proc = run.cli("--quiet", "start", name, "--base", "tiny")
        returned = time.monotonic()
    finally:
        prober.stop.set()
        prober.join()
    if proc.returncode != 0:
        raise RuntimeError(f"pr-test-vm start failed: {proc.stderr.decode(errors='replace')}")
    if prober.accepted_at is None or prober.running_at is None:
        raise RuntimeError("the prober never saw the domain run or sshd accept")
    manager.destroy(name)
    return Sample(prober.running_at - t0, returned - prober.accepted_at, prober.accepted_at - t0)


def run_stagingvm(run: Run, manager: Manager, name: str) -> Sample:
    clock = PhaseClock()
    # The phases are the host's (vm/host.py: the VMHost every step is handed), not the
    # Manager's own attribute: setting only that one left the clock empty (KeyError).
    manager.progress = manager.host.progress = clock
    prober = Prober(manager.conn, run.settings.network.name, name)
    prober.start()
    t0 = time.monotonic()
    try:
        manager.start(name, base="tiny", wait=True)
        returned = time.monotonic()
    finally:
        prober.stop.set()
        prober.join()
    running = clock.ends[f"starting {name}"]
    print(f"  stagingvm phases (s after the call): {clock.breakdown(t0)}", file=sys.stderr)
    if prober.accepted_at is None:
        raise RuntimeError("the prober never saw sshd accept")
    manager.destroy(name)
    return Sample(running - t0, returned - prober.accepted_at, prober.accepted_at - t0)


def run_baseline(
    run: Run,
    conn: libvirt.virConnect,
    disk: Path,
    name: str,
    key: Path,
    known_hosts: Path,
    key_line: str,
    domain_type: str,
) -> Sample:
    copy = run.settings.storage_pool / f"{name}-plain.qcow2"
    net = run.settings.network.name
    prober = Prober(conn, net, name)
    prober.start()
    t0 = time.monotonic()
    try:
        shutil.copyfile(disk, copy)
        subprocess.run(
            [
                "virt-install",
                "--connect",
                run.settings.uri,
                "--import",
                "--noautoconsole",
                "--name",
                name,
                "--memory",
                "256",
                "--vcpus",
                "1",
                "--virt-type",
                domain_type,
                "--osinfo",
                "detect=on,require=off",
                "--disk",
                f"path={copy},format=qcow2,bus=virtio",
                "--network",
                f"network={net},model=virtio",
                "--graphics",
                "none",
                "--sysinfo",
                f"oemStrings.entry0=io.systemd.credential:ssh.authorized_keys.root={key_line}",
            ],
            check=True,
            capture_output=True,
        )
        while prober.running_at is None:  # virt-install returns once QEMU is started
            time.sleep(0.01)
        ip = None
        while ip is None:  # the old script's loop, once a second
            leases = subprocess.run(
                ["virsh", "-c", run.settings.uri, "net-dhcp-leases", net],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            mac = (
                ET.fromstring(conn.lookupByName(name).XMLDesc(0))
                .find("devices/interface/mac")
                .get("address")
            )  # type: ignore[union-attr]
            for line in leases.splitlines():
                if mac in line:
                    ip = line.split()[4].split("/")[0]
            if ip is None:
                time.sleep(1)
        while (
            subprocess.run(
                [
                    "ssh",
                    "-o",
                    "BatchMode=yes",
                    "-o",
                    "StrictHostKeyChecking=yes",
                    "-o",
                    f"UserKnownHostsFile={known_hosts}",
                    "-o",
                    "ConnectTimeout=5",
                    "-i",
                    str(key),
                    f"root@{ip}",
                    "true",
                ],
                capture_output=True,
                check=False,
            ).returncode
            != 0
        ):
            time.sleep(1)
        returned = time.monotonic()
    finally:
        prober.stop.set()
        prober.join()
        with contextlib.suppress(libvirt.libvirtError):
            dom = conn.lookupByName(name)
            if dom.isActive():
                dom.destroy()
            dom.undefine()
        copy.unlink(missing_ok=True)
    assert prober.running_at is not None and prober.accepted_at is not None
    return Sample(prober.running_at - t0, returned - prober.accepted_at, prober.accepted_at - t0)


def prepare_known_hosts(run: Run, pinned_from: str, path: Path) -> None:
    """The guest's host key (pinned by stagingvm's run of the same image) for the whole subnet.

    The same image means the same host key; the baseline VM gets another address, so the
    entry's host pattern is the subnet (``192.168.N.*``). Checking stays strict.
    """
    pinned = (run.settings.vm_dir(pinned_from) / "known_hosts").read_text().split()
    prefix = run.settings.network.subnet.rsplit(".", 1)[0]
    path.write_text(f"{prefix}.* {pinned[1]} {pinned[2]}\n")
    path.chmod(0o600)


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f})"


def report(results: Results, accel: str, rounds: int, via: str) -> str:
    def col(samples: list[Sample], attr: str) -> list[float]:
        return [getattr(s, attr) for s in samples]

    lines = [
        "## Readiness",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `benchmarks/readiness.py` "
        f"({rounds} rounds) on {platform.node()}: {os.cpu_count()} CPUs, "
        f"{platform.system()} {platform.release()}, accelerator **{accel}**, tiny guest "
        "(256 MiB, 1 vCPU). Medians, with min and max. stagingvm measured "
        + (
            "as `pr-test-vm start` in a subprocess (Python start-up included)."
            if via == "cli"
            else "through `Manager.start` (what `pr-test-vm start` calls) in-process."
        ),
        "",
        "| figure | stagingvm | baseline (virt-install + 1 s loop) | ratio | target |",
        "| --- | --- | --- | ---: | --- |",
    ]
    rows = [
        ("readiness latency: start returned after sshd first accepted", "latency", "<= 0.25 s"),
        ("start overhead: call until the domain runs", "overhead", "<= 0.3 s"),
        ("call until sshd first accepts (boot)", "boot_to_ssh", ""),
    ]
    for label, attr, target in rows:
        ours, theirs = col(results.stagingvm, attr), col(results.baseline, attr)
        ratio = statistics.median(theirs) / max(statistics.median(ours), 1e-3)
        lines.append(f"| {label} | {fmt(ours)} | {fmt(theirs)} | {ratio:.1f}x | {target} |")
    lines += [
        "",
        "The prober runs in its own thread inside the lab namespace, learns the guest's address "
        "from the network's DHCP host entry or lease and opens TCP port 22 every 50 ms; "
        '"accepted" means sshd sent its banner. The baseline\'s overhead includes the plain '
        "disk copy the old script made; stagingvm's includes the overlay, the domain definition "
        "and the start (the network, pool and base import exist already in both).",
        "",
    ]
    return "\n".join(lines)


def write_doc(section: str) -> None:
    path = ROOT / "docs" / "performance.md"
    text = path.read_text() if path.exists() else "# Performance\n\n"
    start = text.find("## Readiness")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        rest = text[end + 1 :] if end >= 0 else ""
        text = text[:start] + section.rstrip("\n") + "\n\n" + rest
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--image", type=Path, help="qcow2 to boot (default: the tiny image)")
    parser.add_argument("--write-doc", action="store_true", help="update docs/performance.md")
    parser.add_argument(
        "--via",
        choices=("library", "cli"),
        default="library",
        help="library: Manager.start in this process (with a phase breakdown); cli: "
        "`pr-test-vm start` as a subprocess (includes Python start-up; overhead polled)",
    )
    parser.add_argument(
        "--prefix",
        default="b",
        help="prefix of every libvirt object the run makes (VMs, network, bridge, pool)",
    )
    args = parser.parse_args()
    if os.geteuid() != 0 or not netns.self_in_namespace(LAB_NAMESPACE):
        print(f"run me as root inside the lab: ip netns exec {LAB_NAMESPACE} ...", file=sys.stderr)
        return 2
    conn = connect("qemu:///system")
    run = make_run(conn)
    tag = f"{args.prefix}{os.getpid()}"
    net = replace(run.settings.network, name=tag, bridge=f"vbr-{tag}"[:15])
    settings = replace(
        run.settings,
        network=net,
        pool_name=tag,
        storage_pool=run.settings.storage_pool.with_name(f"stagingvm-{tag}"),
    )
    run = replace(run, prefix=f"{tag}-", settings=settings)
    try:
        disk = args.image if args.image is not None else build(run, "tiny")
        decision = resolve_accel(run.settings, conn)
        if decision.warning:
            print(f"note: {decision.warning}", file=sys.stderr)
        manager = Manager(
            run.settings,
            conn=conn,
            domain_type=decision.domain_type,
            timeout_factor=decision.timeout_factor,
        )
        manager.import_base(disk, "tiny", source_key=str(disk))
        # Warm-up (not counted): network, pool, client key, and the pinned host key we need.
        warm = run.vm_name("warm")
        manager.start(warm, base="tiny")
        from stagingvm.ssh.keys import ensure_client_key

        key_line = ensure_client_key(run.settings.ssh_key_path)
        known_hosts = run.settings.data_dir / "baseline_known_hosts"
        prepare_known_hosts(run, warm, known_hosts)
        manager.destroy(warm)
        results = Results()
        for i in range(args.rounds):
            name = run.vm_name(f"s{i}")
            measure = run_stagingvm_cli if args.via == "cli" else run_stagingvm
            results.stagingvm.append(measure(run, manager, name))
            print(f"stagingvm round {i}: {results.stagingvm[-1]}", file=sys.stderr)
            base_name = run.vm_name(f"v{i}")
            results.baseline.append(
                run_baseline(
                    run,
                    conn,
                    disk,
                    base_name,
                    run.settings.ssh_key_path,
                    known_hosts,
                    key_line,
                    decision.domain_type,
                )
            )
            print(f"baseline round {i}: {results.baseline[-1]}", file=sys.stderr)
        section = report(results, decision.domain_type, args.rounds, args.via)
        print(section)
        if args.write_doc:
            write_doc(section)
        return 0
    finally:
        failures = clean_up(run, conn)
        for failure in failures:
            print(f"clean-up: {failure}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
