"""The serial console against a real domain under the real libvirtd (marker e2e).

The guest is as small as a guest gets: no disk, 64 MiB, SeaBIOS told to use the serial port
and to retry booting every second, so the console has output at once and for as long as the
test needs, without any image. The console runs in a child process on a pty, exactly as a
user's terminal would drive it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from tests.e2e.ptychild import REPO, PtyChild

libvirt = pytest.importorskip("libvirt")

pytestmark = pytest.mark.e2e

URI = os.environ.get("STAGINGVM_E2E_URI", "qemu:///system")
DRIVER = """
import json, os, sys, termios
from stagingvm.virt.console import attach
before = termios.tcgetattr(0) if os.isatty(0) else None
reason = attach(sys.argv[1], sys.argv[2])
after = termios.tcgetattr(0) if os.isatty(0) else None
sys.stderr.write(json.dumps({"reason": reason, "restored": before == after}) + "\\n")
"""


def seabios_domain_xml(name: str) -> str:
    domain = ET.Element("domain", type="qemu")
    ET.SubElement(domain, "name").text = name
    ET.SubElement(domain, "memory", unit="MiB").text = "64"
    ET.SubElement(domain, "vcpu").text = "1"
    os_el = ET.SubElement(domain, "os")
    ET.SubElement(os_el, "type", arch="x86_64", machine="pc").text = "hvm"
    ET.SubElement(os_el, "bios", useserial="yes", rebootTimeout="1000")
    ET.SubElement(os_el, "boot", dev="hd")
    devices = ET.SubElement(domain, "devices")
    serial = ET.SubElement(devices, "serial", type="pty")
    ET.SubElement(serial, "target", port="0")
    console = ET.SubElement(devices, "console", type="pty")
    ET.SubElement(console, "target", type="serial", port="0")
    return ET.tostring(domain, encoding="unicode")


@pytest.fixture
def conn() -> Iterator[object]:
    try:
        connection = libvirt.open(URI)
    except libvirt.libvirtError as exc:
        pytest.skip(f"no libvirtd at {URI}: {exc}")
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture
def bios_domain(conn: object) -> Iterator[str]:
    name = f"ssh-console-{secrets.token_hex(3)}"
    dom = conn.createXML(seabios_domain_xml(name), 0)  # type: ignore[attr-defined]
    try:
        yield name
    finally:
        with contextlib.suppress(libvirt.libvirtError):  # already gone if a test destroyed it
            dom.destroy()


class Child(PtyChild):
    """The console driver attached to domain *name*; ``finish`` gives its JSON report line."""

    def __init__(self, name: str) -> None:
        super().__init__(DRIVER, URI, name, limit=60.0)

    def finish(self) -> tuple[int, str]:
        status = self.wait()
        return status, self.output.rsplit(b"\n", 2)[-2].decode()


def test_attach_shows_output_and_ctrl_bracket_leaves(bios_domain: str) -> None:
    child = Child(bios_domain)
    child.read_until(b"SeaBIOS")
    os.write(child.fd, b"typed\x1d")  # what comes before the escape still goes to the guest
    status, report = child.finish()
    assert status == 0
    assert '"reason": "escape"' in report
    assert '"restored": true' in report


def test_guest_going_away_ends_the_session(bios_domain: str, conn: object) -> None:
    child = Child(bios_domain)
    child.read_until(b"SeaBIOS")
    conn.lookupByName(bios_domain).destroy()  # type: ignore[attr-defined]
    status, report = child.finish()
    assert status == 0
    assert '"reason": "closed"' in report
    assert '"restored": true' in report


def test_stdin_that_ends_ends_the_session(bios_domain: str) -> None:
    """Without a terminal (a pipe): output still flows; end of input detaches."""
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, URI, bios_domain],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=60,
    )
    assert done.returncode == 0
    assert b'"reason": "eof"' in done.stderr


def test_errors_for_missing_and_stopped_domains(conn: object) -> None:
    from stagingvm.errors import GuestFailedError, NotFoundError
    from stagingvm.virt.console import attach

    r, w = os.pipe()
    try:
        with pytest.raises(NotFoundError):
            attach(URI, f"ssh-absent-{secrets.token_hex(3)}", stdin_fd=r, stdout_fd=w)
        name = f"ssh-stopped-{secrets.token_hex(3)}"
        dom = conn.defineXML(seabios_domain_xml(name))  # type: ignore[attr-defined]
        try:
            with pytest.raises(GuestFailedError, match="not running") as info:
                attach(URI, name, stdin_fd=r, stdout_fd=w)
            assert info.value.hint is not None and "--log" in info.value.hint
        finally:
            dom.undefine()
    finally:
        os.close(r)
        os.close(w)
