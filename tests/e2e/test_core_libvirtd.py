"""The libvirt core against a real libvirtd (qemu:///system), with a real QEMU under TCG.

What the test driver cannot show: the network really starts (dnsmasq, bridge), a base image
is really uploaded through a libvirt stream, the overlay really is a qcow2 backed by it, QEMU
(running as an unprivileged user under libvirt's dynamic ownership) really opens the chain,
virtlogd writes the console log, and destroy leaves nothing. The guest is an empty disk: it
never boots an OS, which is enough to exercise everything up to the DHCP-lease wait.

Every object is named ``core-e2e*`` and removed afterwards, also when a test fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stagingvm.errors import WaitTimeoutError
from stagingvm.settings import NetworkSettings, Settings, SSHSettings, Timeouts
from stagingvm.virt import domain as vdomain
from stagingvm.virt import network, storage
from stagingvm.virt.connection import connect
from stagingvm.vm.manager import Manager, overlay_name

pytestmark = pytest.mark.e2e

URI = "qemu:///system"
NET = NetworkSettings(
    name="core-e2e",
    bridge="virbr-core-e2e",
    subnet="192.168.231.0/24",
    dhcp_start="192.168.231.10",
    dhcp_end="192.168.231.50",
)
POOL = "core-e2e"
POOL_PATH = Path("/var/lib/libvirt/images/core-e2e")


def _libvirtd_reachable() -> bool:
    if os.geteuid() != 0:
        return False
    try:
        connect(URI)
    except Exception:
        return False
    return True


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    if not _libvirtd_reachable():
        pytest.skip("needs root and a running libvirtd at qemu:///system")
    data = tmp_path_factory.mktemp("core-e2e-data")
    os.chmod(data, 0o755)
    yield Settings(
        uri=URI,
        network=NET,
        pool_name=POOL,
        storage_pool=POOL_PATH,
        data_dir=data,
        memory=128,
        vcpus=1,
        ssh=SSHSettings(key=data / "keys" / "id_ed25519"),
        timeouts=Timeouts(running=10, lease=8, banner=5, login=5, shutdown=5, tcg_factor=1),
    )
    _teardown(connect(URI))


def _teardown(conn: object) -> None:
    """Remove every core-e2e object, whatever state a failed test left."""
    import libvirt

    assert isinstance(conn, libvirt.virConnect)
    for dom in conn.listAllDomains(0):
        if dom.name().startswith("core-"):
            if dom.isActive():
                dom.destroy()
            dom.undefine()
    pool = storage.pool_lookup(conn, POOL)
    if pool is not None:
        if not pool.isActive():
            pool.create(0)
        pool.refresh(0)
        for vol in pool.listAllVolumes(0):
            vol.delete(0)
        pool.destroy()
        pool.delete(0)
        pool.undefine()
    net = network.lookup(conn, NET.name)
    if net is not None:
        if net.isActive():
            net.destroy()
        net.undefine()


@pytest.fixture(scope="module")
def manager(settings: Settings) -> Manager:
    return Manager(settings, domain_type="qemu")


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("core-e2e-img") / "empty.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-f", "qcow2", str(path), "256M"], check=True, capture_output=True
    )
    return path


@pytest.fixture(scope="module")
def base(manager: Manager, disk: Path) -> str:
    """The base every VM test starts from (imported once; later imports are no-ops)."""
    return manager.import_base(disk, "core-e2e-base", source_key="e2e-1").name


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def qemu_img_info(path: str) -> dict[str, object]:
    out = subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", path],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(out))


def test_import_uploads_through_the_storage_api(manager: Manager, disk: Path) -> None:
    base = manager.import_base(disk, "core-e2e-base", source_key="e2e-1")
    assert not base.reused
    assert Path(base.path).parent == POOL_PATH
    assert sha256(Path(base.path)) == sha256(disk)  # byte for byte what we sent
    assert qemu_img_info(base.path)["format"] == "qcow2"
    assert oct(Path(base.path).stat().st_mode & 0o777) == oct(0o444)
    again = manager.import_base(disk, "core-e2e-base", source_key="e2e-1")
    assert again.reused and again.volume == base.volume
    net = network.require(manager.conn, NET.name)
    assert net.isActive() and net.autostart()


def test_raw_images_are_converted(manager: Manager, tmp_path: Path) -> None:
    raw = tmp_path / "disk.raw"
    with raw.open("wb") as fh:
        fh.truncate(64 << 20)
    base = manager.import_base(raw, "core-e2e-raw")
    info = qemu_img_info(base.path)
    assert info["format"] == "qcow2" and info["virtual-size"] == 64 << 20


def test_start_runs_qemu_on_an_overlay_and_destroy_leaves_nothing(
    manager: Manager, base: str
) -> None:
    settings = manager.settings
    info = manager.start("core-e2e-vm", base=base, wait=False, label="e2e")
    assert info.state == "running" and info.domain_type == "qemu"
    overlay = info.disk_path
    assert overlay == str(POOL_PATH / overlay_name("core-e2e-vm"))
    chain = qemu_img_info(overlay)
    assert chain["format"] == "qcow2"
    assert chain["backing-filename"] == str(
        POOL_PATH
        / json.loads((settings.data_dir / "bases" / "core-e2e-base.json").read_text())["volume"]
    )
    assert chain.get("backing-filename-format") == "qcow2"
    # QEMU runs and virtlogd writes the serial console to the VM's directory.
    console = settings.vm_dir("core-e2e-vm") / "console.log"
    deadline = time.monotonic() + 10
    while not console.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert console.exists()
    assert manager.status("core-e2e-vm").state == "running"
    assert "core-e2e-vm" in [vm.name for vm in manager.list()]

    manager.destroy("core-e2e-vm")
    conn = manager.conn
    assert vdomain.lookup(conn, "core-e2e-vm") is None
    pool = storage.require_pool(conn, POOL)
    pool.refresh(0)
    assert overlay_name("core-e2e-vm") not in storage.volume_names(pool)
    assert not Path(overlay).exists()
    net = network.require(conn, NET.name)
    assert [h for h in network.dhcp_hosts(net) if h.name == "core-e2e-vm"] == []
    assert not settings.vm_dir("core-e2e-vm").exists()


def test_a_guest_without_dhcp_fails_in_the_lease_phase_and_is_cleaned_up(
    manager: Manager, base: str
) -> None:
    with pytest.raises(WaitTimeoutError) as err:
        manager.start("core-e2e-nolease", base=base, wait=True)
    assert err.value.phase == "DHCP lease"
    assert vdomain.lookup(manager.conn, "core-e2e-nolease") is None
    assert not manager.settings.vm_dir("core-e2e-nolease").exists()
    pool = storage.require_pool(manager.conn, POOL)
    assert overlay_name("core-e2e-nolease") not in storage.volume_names(pool)


def test_stop_without_an_os_times_out_with_a_hint_then_force_works(
    manager: Manager, base: str
) -> None:
    manager.start("core-e2e-stop", base=base, wait=False)
    try:
        with pytest.raises(WaitTimeoutError) as err:
            manager.stop("core-e2e-stop", timeout=2)
        assert err.value.hint is not None and "--force" in err.value.hint
        assert manager.stop("core-e2e-stop", force=True).state == "shut off"
    finally:
        manager.destroy("core-e2e-stop")


def test_a_guest_that_dies_fails_the_wait_within_a_poll(settings: Settings, base: str) -> None:
    import threading
    from dataclasses import replace

    from stagingvm.errors import GuestFailedError

    # A lease time-out of an hour: only the crash detection can end this wait.
    manager = Manager(
        replace(settings, timeouts=replace(settings.timeouts, lease=3600)), domain_type="qemu"
    )

    def crash_soon() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            dom = vdomain.lookup(manager.conn, "core-e2e-crash")
            if dom is not None and dom.isActive():
                time.sleep(1)
                dom.destroy()  # what on_crash=destroy does to a crashed guest
                return
            time.sleep(0.1)

    killer = threading.Thread(target=crash_soon)
    killer.start()
    started = time.monotonic()
    try:
        with pytest.raises(GuestFailedError) as err:
            manager.start("core-e2e-crash", base=base, wait=True)
    finally:
        killer.join()
    assert err.value.phase == "DHCP lease"
    assert time.monotonic() - started < 20
    assert vdomain.lookup(manager.conn, "core-e2e-crash") is None
    assert not settings.vm_dir("core-e2e-crash").exists()
