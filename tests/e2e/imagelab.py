"""Boot a cached image in the lab with plain libvirt, and time it (tests + benchmark).

This deliberately uses libvirt directly (not stagingvm.vm.manager.Manager): it tests the images,
not the lifecycle code. Everything that talks to the guest's address runs inside the
lab's network namespace (``ip netns exec stagingvm-lab ...``), as the project's
networking rule requires. Every object it creates is named ``images-*``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

LAB_NETNS = "stagingvm-lab"
URI = "qemu:///system"
NET_NAME = "images-net"
NET_BRIDGE = "virbr-img"
NET_PREFIX = "192.168.183"
WORK = Path("/var/lib/libvirt/images/stagingvm-images-test")


def lab_available() -> bool:
    """True if the lab namespace exists and its libvirtd answers."""
    if os.geteuid() != 0 or not Path(f"/run/netns/{LAB_NETNS}").exists():
        return False
    proc = subprocess.run(["virsh", "-c", URI, "version"], capture_output=True, check=False)
    return proc.returncode == 0


def virsh(*args: str, check: bool = True) -> str:
    proc = subprocess.run(["virsh", "-c", URI, *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"virsh {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def in_lab(argv: Sequence[str], **kw: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["ip", "netns", "exec", LAB_NETNS, *argv], check=False, **kw)  # type: ignore[call-overload, no-any-return]


def ensure_network() -> None:
    """A NAT network of our own in the lab (192.168.183.0/24), started."""
    if NET_NAME not in virsh("net-list", "--all", "--name").split():
        net = ET.Element("network")
        ET.SubElement(net, "name").text = NET_NAME
        ET.SubElement(net, "forward", mode="nat")
        ET.SubElement(net, "bridge", name=NET_BRIDGE, stp="on", delay="0")
        ip = ET.SubElement(net, "ip", address=f"{NET_PREFIX}.1", netmask="255.255.255.0")
        dhcp = ET.SubElement(ip, "dhcp")
        ET.SubElement(dhcp, "range", start=f"{NET_PREFIX}.10", end=f"{NET_PREFIX}.200")
        path = WORK / "net.xml"
        WORK.mkdir(parents=True, exist_ok=True)
        path.write_bytes(ET.tostring(net))
        virsh("net-define", str(path))
    if NET_NAME not in virsh("net-list", "--name").split():
        virsh("net-start", NET_NAME)


def domain_xml(
    name: str,
    disk: Path,
    mac: str,
    console_log: Path,
    oem: Sequence[str],
    memory_mib: int,
    vcpus: int,
) -> bytes:
    dom = ET.Element("domain", type="qemu")
    ET.SubElement(dom, "name").text = name
    ET.SubElement(dom, "memory", unit="MiB").text = str(memory_mib)
    ET.SubElement(dom, "vcpu").text = str(vcpus)
    sysinfo = ET.SubElement(dom, "sysinfo", type="smbios")
    strings = ET.SubElement(sysinfo, "oemStrings")
    for s in oem:
        ET.SubElement(strings, "entry").text = s
    os_el = ET.SubElement(dom, "os")
    ET.SubElement(os_el, "type", arch="x86_64", machine="pc").text = "hvm"
    ET.SubElement(os_el, "boot", dev="hd")
    ET.SubElement(os_el, "smbios", mode="sysinfo")
    feats = ET.SubElement(dom, "features")
    ET.SubElement(feats, "acpi")
    ET.SubElement(feats, "apic")
    ET.SubElement(dom, "on_poweroff").text = "destroy"
    ET.SubElement(dom, "on_reboot").text = "restart"
    ET.SubElement(dom, "on_crash").text = "destroy"
    dev = ET.SubElement(dom, "devices")
    d = ET.SubElement(dev, "disk", type="file", device="disk")
    ET.SubElement(d, "driver", name="qemu", type="qcow2")
    ET.SubElement(d, "source", file=str(disk))
    ET.SubElement(d, "target", dev="vda", bus="virtio")
    nic = ET.SubElement(dev, "interface", type="network")
    ET.SubElement(nic, "source", network=NET_NAME)
    ET.SubElement(nic, "mac", address=mac)
    ET.SubElement(nic, "model", type="virtio")
    serial = ET.SubElement(dev, "serial", type="pty")
    ET.SubElement(serial, "log", file=str(console_log), append="off")
    ET.SubElement(dev, "console", type="pty")
    rng = ET.SubElement(dev, "rng", model="virtio")
    ET.SubElement(rng, "backend", model="random").text = "/dev/urandom"
    return ET.tostring(dom)


@dataclass
class BootedGuest:
    name: str
    ip: str
    key: Path
    known_hosts: Path
    console_log: Path
    timings: dict[str, float] = field(default_factory=dict)

    def ssh(
        self, argv: Sequence[str], *, user: str = "root", timeout: float = 60
    ) -> subprocess.CompletedProcess[bytes]:
        cmd = [
            "ssh",
            "-i",
            str(self.key),
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            f"{user}@{self.ip}",
            "--",
            *argv,
        ]
        return in_lab(cmd, capture_output=True, timeout=timeout)

    def console(self) -> str:
        try:
            return self.console_log.read_text(errors="replace")
        except OSError:
            return ""


def lease_for(mac: str) -> str | None:
    status = Path(f"/var/lib/libvirt/dnsmasq/{NET_BRIDGE}.status")
    try:
        leases = json.loads(status.read_text() or "[]")
    except (OSError, ValueError):
        return None
    for lease in leases:
        if lease.get("mac-address", "").lower() == mac.lower():
            return str(lease["ip-address"])
    return None


def banner(ip: str) -> bool:
    """One probe of port 22 from inside the lab; True when sshd sends its banner."""
    code = (
        "import socket,sys\n"
        "s=socket.create_connection((sys.argv[1],22),timeout=1)\n"
        "s.settimeout(2); sys.exit(0 if s.recv(64).startswith(b'SSH-') else 1)\n"
    )
    proc = in_lab(["python3", "-c", code, ip], capture_output=True, timeout=10)
    return proc.returncode == 0


@contextlib.contextmanager
def booted(
    image: Path,
    name: str,
    *,
    host_keys: Sequence[str],
    key: Path,
    extra_oem: Sequence[str] = (),
    memory_mib: int = 512,
    vcpus: int = 1,
    timeout: float = 300,
) -> Iterator[BootedGuest]:
    """Boot *image* as domain *name*, wait for SSH, yield, always tear down."""
    ensure_network()
    WORK.mkdir(parents=True, exist_ok=True)
    overlay = WORK / f"{name}.qcow2"
    console_log = WORK / f"{name}.console.log"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image), "-F", "qcow2", str(overlay)],
        check=True,
    )
    mac = "52:54:00:" + ":".join(f"{b:02x}" for b in os.urandom(3))
    pub = key.with_suffix(".pub").read_text().strip()
    oem = [f"io.systemd.credential:ssh.authorized_keys.root={pub}", *extra_oem]
    xml_path = WORK / f"{name}.xml"
    xml_path.write_bytes(domain_xml(name, overlay, mac, console_log, oem, memory_mib, vcpus))
    known_hosts = WORK / f"{name}.known_hosts"
    guest = BootedGuest(name, "", key, known_hosts, console_log)
    t0 = time.monotonic()
    try:
        virsh("create", str(xml_path))
        guest.timings["create"] = time.monotonic() - t0
        while time.monotonic() - t0 < timeout:
            ip = lease_for(mac)
            if ip:
                guest.ip = ip
                guest.timings["lease"] = time.monotonic() - t0
                break
            time.sleep(0.2)
        else:
            raise TimeoutError(f"{name}: no lease after {timeout} s\n{guest.console()[-3000:]}")
        known_hosts.write_text("".join(f"{guest.ip} {k}\n" for k in host_keys))
        while time.monotonic() - t0 < timeout:
            if banner(guest.ip):
                guest.timings["ssh_banner"] = time.monotonic() - t0
                break
            time.sleep(0.2)
        else:
            raise TimeoutError(
                f"{name}: no SSH banner after {timeout} s\n{guest.console()[-3000:]}"
            )
        yield guest
    finally:
        virsh("destroy", name, check=False)
        for p in (overlay, xml_path, known_hosts):
            p.unlink(missing_ok=True)


def shutdown_seconds(name: str, timeout: float = 120) -> float | None:
    """Send an ACPI shutdown; seconds until the domain is gone, None if it stayed up."""
    t0 = time.monotonic()
    virsh("shutdown", name, check=False)
    while time.monotonic() - t0 < timeout:
        if name not in virsh("list", "--name").split():
            return time.monotonic() - t0
        time.sleep(0.2)
    return None


def make_client_key(path: Path) -> Path:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path
