"""``pr-test-vm build --image`` through the real CLI into the lab's libvirtd.

The unit tests cannot cover it: libvirt's test driver takes no volume uploads. No guest is
booted here, so this is quick: a small qcow2 and a raw image are imported as bases.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt

from stagingvm.virt import bases
from tests.e2e.harness import Run
from tests.e2e.ptychild import PtyChild


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


def random_image(path: Path, mib: int) -> Path:
    """A raw disk of *mib* MiB of random bytes: its qcow2 is as big (nothing to leave out)."""
    with path.open("wb") as fh:
        for _ in range(mib):
            fh.write(os.urandom(1 << 20))
    return path


PTY_CLI = """
import json, os, sys
for key in [k for k in os.environ if k.startswith("STAGINGVM_") or k == "NO_COLOR"]:
    del os.environ[key]
os.environ.update(json.loads(sys.argv.pop(1)), TERM="xterm")
sys.argv[0] = "pr-test-vm"
from stagingvm.cli.app import main
try:
    main()
    code = 0
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 1
sys.stderr.write("\\0eof\\0")
sys.stderr.flush()
os._exit(code)
"""


def test_upload_shows_bytes_and_percent_on_a_terminal(run: Run, tmp_path: Path) -> None:
    name = f"{run.prefix}bar"
    disk = random_image(tmp_path / "disk.img", 24)
    env = {k: v for k, v in run.env().items() if k.startswith("STAGINGVM_")}
    child = PtyChild(
        PTY_CLI, json.dumps({**env, "COLUMNS": "120"}), "build", "--image", str(disk),
        "--name", name, limit=300,
    )  # fmt: skip
    assert child.wait() == 0, child.output[-2000:]
    text = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", child.output).decode(errors="replace")
    assert f"uploading disk.img as base image {name}" in text
    assert re.search(r"[0-9.]+/24\.\d MiB", text)  # bytes done / total, as the bar shows them
    assert "%" in text
    assert re.search(rf"✓ uploading disk.img as base image {name} \([0-9.]+ s, 24\.\d MiB\)", text)


def test_verbose_upload_off_a_terminal_logs_tenths(run: Run, tmp_path: Path) -> None:
    name = f"{run.prefix}tenths"
    disk = random_image(tmp_path / "disk.img", 24)
    proc = run.cli("-v", "build", "--image", str(disk), "--name", name, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    lines = proc.stderr.decode().splitlines()
    what = f"uploading disk.img as base image {name}"
    start = lines.index(next(line for line in lines if line.startswith(f"... {what} (")))
    tenths = [line for line in lines[start:] if line.startswith(f"    {what}: ")]
    # 4 MiB chunks of a ~24 MiB qcow2: one line at each tenth crossed, before the last chunk
    assert 3 <= len(tenths) <= 9, lines
    assert all(
        re.search(r": \d+% \([0-9.]+ MiB of 24\.\d MiB, [0-9.]+ [KMG]?i?B/s\)$", t) for t in tenths
    )
    assert any(line.startswith(f"done: {what} (") for line in lines[start:])
