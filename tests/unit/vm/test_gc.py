"""``gc`` on libvirt's test driver: what crashed runs leave is found, and removed only with
dry_run=False; what a live command holds (its lock) is left alone and reported busy."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from stagingvm import locks
from stagingvm.errors import InvalidInputError
from stagingvm.virt import bases, network, storage
from stagingvm.vm import gc
from stagingvm.vm.manager import Manager, overlay_name


def kinds(report: gc.Report) -> list[tuple[str, str]]:
    return sorted((item.kind, item.name) for item in report.found)


def crashed_start(manager: Manager, name: str) -> None:
    """What a start killed after booting leaves: everything, and its marker."""
    manager.start(name, base="base", wait=False)
    (manager.settings.vm_dir(name) / gc.STARTING_MARKER).write_text("")


def test_nothing_to_do_on_a_clean_host(manager: Manager, base: bases.BaseImage) -> None:
    manager.start("fine", base="base", wait=False)
    report = gc.collect(manager.host, dry_run=False)
    assert report.found == [] and report.removed == [] and report.failed == []


def test_a_killed_start_is_found_then_removed(manager: Manager, base: bases.BaseImage) -> None:
    crashed_start(manager, "torn")
    dry = gc.collect(manager.host, dry_run=True)
    assert kinds(dry) == [("vm", "torn")]
    assert dry.removed == []
    assert manager.conn.lookupByName("torn") is not None  # a dry run touches nothing
    done = gc.collect(manager.host, dry_run=False)
    assert [i.name for i in done.removed] == ["torn"]
    assert gc.collect(manager.host, dry_run=True).found == []
    assert "torn" not in [d.name() for d in manager.conn.listAllDomains(0)]


def test_pieces_without_a_domain(manager: Manager, base: bases.BaseImage) -> None:
    manager.start("half", base="base", wait=False)
    dom = manager.conn.lookupByName("half")
    dom.destroy()
    dom.undefine()  # as if the start had been killed between its steps
    found = kinds(gc.collect(manager.host, dry_run=True))
    assert found == [("dhcp-host", "half"), ("vm-dir", "half"), ("volume", overlay_name("half"))]
    gc.collect(manager.host, dry_run=False)
    assert gc.collect(manager.host, dry_run=True).found == []
    net = manager.host.network()
    assert net is not None and not [h for h in network.dhcp_hosts(net) if h.name == "half"]


def test_a_vm_whose_lock_is_held_is_busy_not_removed(
    manager: Manager, base: bases.BaseImage
) -> None:
    crashed_start(manager, "held")
    with locks.vm_lock(manager.settings.locks_dir, "held"):
        report = gc.collect(manager.host, dry_run=False)
    assert report.found == [] and "VM held" in report.busy
    assert manager.conn.lookupByName("held") is not None


def test_older_than(manager: Manager, base: bases.BaseImage) -> None:
    manager.start("old", base="base", wait=False)
    assert gc.collect(manager.host, older_than=3600, dry_run=True).found == []
    report = gc.collect(manager.host, older_than=0.0, dry_run=True)
    assert kinds(report) == [("vm", "old")]


def test_unrecorded_base_volume_and_retired_ones(manager: Manager, base: bases.BaseImage) -> None:
    pool = manager.host.ensure_host()
    manager.start("user", base="base", wait=False)
    orphan = "base-base-0123456789ab.qcow2"
    pool.createXML(
        storage.render_volume(orphan, capacity=1 << 20, fmt="qcow2", mode=storage.BASE_MODE), 0
    )
    assert kinds(gc.collect(manager.host, dry_run=True)) == [("volume", orphan)]
    with locks.volume_lock(manager.settings.locks_dir, orphan, shared=True):
        held = gc.collect(manager.host, dry_run=False)
    assert held.removed == [] and f"volume {orphan}" in held.busy
    gc.collect(manager.host, dry_run=False)
    assert storage.volume_lookup(pool, orphan) is None
    assert storage.volume_lookup(pool, base.volume) is not None  # current and in use


def test_temp_files_and_qemu_img_of_a_killed_import(
    manager: Manager, base: bases.BaseImage
) -> None:
    tmp = bases.tmp_dir(manager.settings.data_dir) / "tiny.abcd1234"
    tmp.mkdir(parents=True)
    (tmp / "base.qcow2").write_bytes(b"\0" * 4096)
    # A process that calls itself qemu-img and writes below tmp/, as a convert does.
    child = subprocess.Popen(
        ["qemu-img", "-c", "import time; time.sleep(60)", str(tmp / "base.qcow2")],
        executable=sys.executable,
    )
    try:
        with locks.import_lock(manager.settings.locks_dir, "tiny"):
            busy = gc.collect(manager.host, dry_run=False)
        assert busy.found == [] and "import of tiny" in busy.busy
        found = kinds(gc.collect(manager.host, dry_run=True))
        assert found == [("process", f"qemu-img[{child.pid}]"), ("tmp", str(tmp))]
        gc.collect(manager.host, dry_run=False)
        assert child.wait(timeout=10) == -9
        assert not tmp.exists()
    finally:
        child.kill()
        child.wait()


def test_a_base_in_use_by_a_start_survives_a_prune(manager: Manager, base: bases.BaseImage) -> None:
    pool = manager.host.ensure_host()
    data_dir = manager.settings.data_dir
    entered, release = threading.Event(), threading.Event()
    seen: list[str] = []

    def starter() -> None:
        with bases.in_use(pool, data_dir, "base") as record:
            seen.append(record.volume)
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=starter)
    thread.start()
    assert entered.wait(10)
    # a re-import points the record elsewhere; the old volume is in use by the start
    bases.write_record(data_dir, replace_volume(base, "base-base-fedcba987654.qcow2"))
    assert bases.prune(manager.conn, pool, data_dir, "base") == []
    assert storage.volume_lookup(pool, base.volume) is not None
    release.set()
    thread.join()
    assert bases.prune(manager.conn, pool, data_dir, "base") == [base.volume]
    assert seen == [base.volume]


def replace_volume(base: bases.BaseImage, volume: str) -> bases.BaseImage:
    import dataclasses

    return dataclasses.replace(base, volume=volume)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("2h", 7200), ("7d", 604800)]
)
def test_durations(text: str, seconds: float) -> None:
    assert gc.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0h", "2", "1.5h", "-1h", "h", "2w"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(InvalidInputError):
        gc.parse_duration(text)
