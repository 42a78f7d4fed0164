"""``pr-test-vm build --image`` through the real CLI into the lab's libvirtd.

The unit tests cannot cover it: libvirt's test driver takes no volume uploads. No guest is
booted here, so this is quick: a small qcow2 and a raw image are imported as bases.
"""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt

from stagingvm.virt import bases
from tests.e2e.harness import Run


def make_image(path: Path, fmt: str, size: str = "32M") -> Path:
    subprocess.run(["qemu-img", "create", "-q", "-f", fmt, str(path), size], check=True)
    return path


def volume_xml(conn: libvirt.virConnect, run: Run, volume: str) -> ET.Element:
    pool = conn.storagePoolLookupByName(run.settings.pool_name)
    pool.refresh(0)
    return ET.fromstring(pool.storageVolLookupByName(volume).XMLDesc(0))


def test_build_image_prints_the_base_name(
    run: Run, conn: libvirt.virConnect, tmp_path: Path
) -> None:
    name = f"{run.prefix}img"
    disk = make_image(tmp_path / "disk.qcow2", "qcow2")
    proc = run.cli("build", "--image", str(disk), "--name", name, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert proc.stdout.decode() == f"{name}\n"  # data only: usable as $(pr-test-vm build ...)
    assert f"base image {name} is ready" in proc.stderr.decode()
    record = bases.read_record(run.settings.data_dir, name)
    assert record is not None
    assert record.source == str(disk)
    root = volume_xml(conn, run, record.volume)
    assert root.find("target/format") is not None
    assert root.find("target/format").get("type") == "qcow2"  # type: ignore[union-attr]
    assert root.findtext("target/permissions/mode") == "0444"  # bases are read-only


def test_build_raw_image_json(run: Run, conn: libvirt.virConnect, tmp_path: Path) -> None:
    name = f"{run.prefix}raw"
    disk = make_image(tmp_path / "disk.img", "raw", "16M")
    proc = run.cli("build", "--image", str(disk), "--name", name, "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    doc = json.loads(proc.stdout)
    assert doc["name"] == name
    assert doc["format"] == "qcow2"  # converted on import
    assert doc["virtual_size"] == 16 * 1024 * 1024
    assert doc["source"] == str(disk)
    root = volume_xml(conn, run, doc["volume"])
    assert root.find("target/format").get("type") == "qcow2"  # type: ignore[union-attr]


def test_build_missing_image_is_not_found(run: Run, tmp_path: Path) -> None:
    proc = run.cli("build", "--image", str(tmp_path / "nope.qcow2"), "--name", f"{run.prefix}x")
    assert proc.returncode == 3
    assert proc.stdout == b""
    assert proc.stderr.decode().startswith("error: image file ")
