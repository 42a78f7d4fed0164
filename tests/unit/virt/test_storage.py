"""Pool, volumes and base images: real qemu-img, libvirt's test driver for the pool."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from stagingvm.errors import BuildError, InvalidInputError, NotFoundError
from stagingvm.virt import bases, qemuimg, storage
from stagingvm.vm.manager import Manager


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


@pytest.fixture
def qcow2(tmp_path: Path) -> Path:
    path = tmp_path / "disk.qcow2"
    qemu_img("create", "-f", "qcow2", str(path), "64M")
    return path


def test_inspect_detects_qcow2_and_raw(tmp_path: Path, qcow2: Path) -> None:
    facts = qemuimg.inspect(qcow2)
    assert (facts.format, facts.virtual_size, facts.backing_file) == ("qcow2", 64 << 20, None)
    raw = tmp_path / "disk.raw"
    raw.write_bytes(b"\0" * (1 << 20))
    assert qemuimg.inspect(raw).format == "raw"
    # The name says nothing: a qcow2 called .raw is a qcow2.
    disguised = tmp_path / "really-qcow2.raw"
    disguised.write_bytes(qcow2.read_bytes())
    assert qemuimg.inspect(disguised).format == "qcow2"


def test_inspect_refuses_what_cannot_be_a_base(tmp_path: Path, qcow2: Path) -> None:
    overlay = tmp_path / "overlay.qcow2"
    qemu_img("create", "-f", "qcow2", "-b", str(qcow2), "-F", "qcow2", str(overlay))
    with pytest.raises(InvalidInputError, match="backing file") as err:
        qemuimg.inspect(overlay)
    assert err.value.hint and "qemu-img convert" in err.value.hint
    vmdk = tmp_path / "disk.vmdk"
    qemu_img("create", "-f", "vmdk", str(vmdk), "16M")
    with pytest.raises(InvalidInputError, match="vmdk"):
        qemuimg.inspect(vmdk)
    with pytest.raises(InvalidInputError, match="not a file"):
        qemuimg.inspect(tmp_path / "missing.qcow2")
    empty = tmp_path / "empty.raw"
    empty.write_bytes(b"")
    with pytest.raises(InvalidInputError, match="empty"):
        qemuimg.inspect(empty)


def test_raw_converts_to_a_smaller_qcow2(tmp_path: Path) -> None:
    raw = tmp_path / "disk.raw"
    with raw.open("wb") as fh:
        fh.truncate(256 << 20)  # sparse 256 MiB of zeros
        fh.seek(1 << 20)
        fh.write(b"stagingvm" * 100)
    out = tmp_path / "out.qcow2"
    qemuimg.convert_to_qcow2(raw, "raw", out)
    facts = qemuimg.inspect(out)
    assert facts.format == "qcow2" and facts.virtual_size == 256 << 20
    assert out.stat().st_size < 4 << 20


def test_ensure_pool_is_idempotent_and_reports_drift(conn: Any, tmp_path: Path) -> None:
    assert storage.ensure_pool(conn, "staging", tmp_path / "pool") == []
    pool = storage.require_pool(conn, "staging")
    assert pool.isActive() and pool.autostart()
    assert storage.ensure_pool(conn, "staging", tmp_path / "pool") == []
    drift = storage.ensure_pool(conn, "staging", tmp_path / "elsewhere")
    assert drift == [f"target path: wanted {tmp_path / 'elsewhere'}, found {tmp_path / 'pool'}"]
    with pytest.raises(NotFoundError):
        storage.require_pool(conn, "nope")


def test_overlay_is_backed_by_the_base(conn: Any, tmp_path: Path) -> None:
    storage.ensure_pool(conn, "staging", tmp_path / "pool")
    pool = storage.require_pool(conn, "staging")
    base = pool.createXML(
        storage.render_volume("base-x.qcow2", capacity=1 << 30, fmt="qcow2", mode="0444"), 0
    )
    overlay = storage.create_overlay(
        pool, "vm-x.qcow2", backing=base, backing_format="qcow2", capacity=1 << 30
    )
    assert overlay.path() == str(tmp_path / "pool" / "vm-x.qcow2")
    assert base.path() in overlay.XMLDesc(0)
    assert storage.delete_volume(pool, "vm-x.qcow2") is True
    assert storage.delete_volume(pool, "vm-x.qcow2") is False
    assert storage.volume_names(pool) == ["base-x.qcow2"]


def test_import_that_cannot_upload_leaves_nothing(manager: Manager, qcow2: Path) -> None:
    """The test driver has no upload: the failure must not leave a volume or a record."""
    with pytest.raises(BuildError, match="could not upload"):
        manager.import_base(qcow2, "img", source_key="nix-store-path-1")
    pool = storage.require_pool(manager.conn, manager.settings.pool_name)
    assert storage.volume_names(pool) == []
    assert bases.read_record(manager.settings.data_dir, "img") is None


def test_import_with_a_known_key_is_a_no_op(manager: Manager, qcow2: Path) -> None:
    from tests.unit.corehelpers import add_base

    known = add_base(manager, "img")
    again = manager.import_base(qcow2, "img", source_key=known.source_key)
    assert again.reused and again.volume == known.volume
    # A new key means a new import (which the test driver then cannot upload).
    with pytest.raises(BuildError):
        manager.import_base(qcow2, "img", source_key="another-key")
    assert bases.read_record(manager.settings.data_dir, "img") == known


def test_import_refuses_bad_input_before_touching_libvirt(manager: Manager, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError):
        manager.import_base(tmp_path / "x.qcow2", "../evil")
    with pytest.raises(NotFoundError):
        manager.import_base(tmp_path / "missing.qcow2", "img")
    assert storage.pool_lookup(manager.conn, manager.settings.pool_name) is None


def test_base_records(tmp_path: Path) -> None:
    base = bases.BaseImage(
        name="img",
        volume=bases.volume_name("img", "k"),
        path="/p/v",
        format="qcow2",
        virtual_size=1,
        source="/src",
        source_key="k",
        imported_at="2026-01-01T00:00:00Z",
    )
    bases.write_record(tmp_path, base)
    path = bases.record_path(tmp_path, "img")
    assert json.loads(path.read_text())["source_key"] == "k"
    assert bases.read_record(tmp_path, "img") == base
    path.write_text("{torn")
    assert bases.read_record(tmp_path, "img") is None
    assert bases.volume_name("img", "k") == bases.volume_name("img", "k")
    assert bases.volume_name("img", None) != bases.volume_name("img", None)


def test_stale_base_volumes_are_pruned_unless_in_use(manager: Manager) -> None:
    from tests.unit.corehelpers import add_base

    old = add_base(manager, "img")
    manager.start("user", base="img", wait=False)  # keeps the old volume in use
    pool = storage.require_pool(manager.conn, manager.settings.pool_name)
    new_name = bases.volume_name("img", "key-2")
    pool.createXML(storage.render_volume(new_name, capacity=1, fmt="qcow2", mode="0444"), 0)
    bases.write_record(
        manager.settings.data_dir,
        bases.BaseImage(**{**old.to_json(), "volume": new_name, "source_key": "key-2"}),
    )
    other = bases.volume_name("img-two", "x")  # a base whose name starts like ours
    pool.createXML(storage.render_volume(other, capacity=1, fmt="qcow2", mode="0444"), 0)
    assert bases.stale_volumes(pool, manager.settings.data_dir, "img") == [old.volume]
    assert bases.prune(manager.conn, pool, manager.settings.data_dir, "img") == []
    assert old.volume in storage.volume_names(pool)  # still backing "user"
    manager.destroy("user")  # the last user of the retired volume: destroy deletes it
    assert sorted(storage.volume_names(pool)) == sorted([new_name, other])
