"""The Manager's verbs on libvirt's test driver: start, list, status, stop, destroy, rebuild."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from stagingvm.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    WaitTimeoutError,
)
from stagingvm.settings import Settings
from stagingvm.virt import bases, network, storage, xmlrender
from stagingvm.virt import domain as vdomain
from stagingvm.vm.manager import ROOT_KEY_CREDENTIAL, Manager, overlay_name
from tests.unit.corehelpers import ReadyProbes, SilentProbes, add_base, make_manager, with_timeouts


def leftovers(manager: Manager, name: str) -> list[str]:
    """Everything of VM *name* that still exists (the empty list: nothing)."""
    conn, settings = manager.conn, manager.settings
    found = []
    if vdomain.lookup(conn, name) is not None:
        found.append("domain")
    pool = storage.pool_lookup(conn, settings.pool_name)
    if pool is not None and storage.volume_lookup(pool, overlay_name(name)) is not None:
        found.append("overlay")
    net = network.lookup(conn, settings.network.name)
    if net is not None and any(h.name == name for h in network.dhcp_hosts(net)):
        found.append("DHCP host entry")
    if settings.vm_dir(name).exists():
        found.append("VM directory")
    return found


def test_start_without_wait_creates_a_running_vm(manager: Manager, base: bases.BaseImage) -> None:
    info = manager.start("web", base="base", wait=False, pr_ref="refs/pull/7/head", label="x")
    assert info.name == "web" and info.state == "running"
    assert info.base == "base" and info.base_volume == base.volume
    assert info.pr_ref == "refs/pull/7/head" and info.label == "x"
    assert info.memory_mib == manager.settings.memory and info.vcpus == manager.settings.vcpus
    assert info.domain_type == "qemu"
    assert info.console_log == str(manager.settings.vm_dir("web") / "console.log")

    # The overlay is a qcow2 backed by the base; the domain boots from it.
    pool = storage.require_pool(manager.conn, manager.settings.pool_name)
    overlay = storage.volume_lookup(pool, overlay_name("web"))
    assert overlay is not None and info.disk_path == overlay.path()
    vol_xml = xmlrender.parse(overlay.XMLDesc(0))
    assert vol_xml.findtext("backingStore/path") == base.path
    assert vol_xml.find("target/format").get("type") == "qcow2"

    # The root key travels as a systemd credential; the MAC has a DHCP reservation.
    facts = vdomain.facts(manager.conn.lookupByName("web"))
    key = (manager.settings.ssh_key_path.with_suffix(".pub")).read_text().strip()
    assert facts.credentials[ROOT_KEY_CREDENTIAL] == key
    net = network.require(manager.conn, manager.settings.network.name)
    hosts = [h for h in network.dhcp_hosts(net) if h.name == "web"]
    assert [h.mac for h in hosts] == [info.mac]
    assert hosts[0].ip == manager.settings.network.dhcp_start


def test_start_with_wait_runs_every_phase(settings: Settings, conn: Any, routes_file: Path) -> None:
    probes = ReadyProbes()
    manager = make_manager(settings, conn, routes_file, probes=probes, timeout_factor=3.0)
    add_base(manager)
    info = manager.start("ready", base="base", wait=True)
    assert info.state == "running"
    # The banner and login phases probed the address the lease phase found, with per-probe
    # time-outs scaled like the phases (an emulated guest's sshd is slow to greet).
    assert probes.banners == [(info.ip, 22, 6.0)]
    host, login = probes.logins[-1]
    assert host == info.ip
    assert login["user"] == "root" and login["timeout"] == 30.0
    assert login["known_hosts"] == settings.vm_dir("ready") / "known_hosts"
    assert login["key_path"] == settings.ssh_key_path


def test_network_and_pool_are_made_once(manager: Manager, base: bases.BaseImage) -> None:
    manager.start("one", base="base", wait=False)
    manager.start("two", base="base", wait=False)
    names = [n.name() for n in manager.conn.listAllNetworks()]
    assert sorted(names) == ["foreign-net", "staging"]
    net = network.require(manager.conn, "staging")
    assert net.isActive() and net.autostart()
    pool = storage.require_pool(manager.conn, manager.settings.pool_name)
    assert pool.autostart()
    ips = sorted(h.ip for h in network.dhcp_hosts(net))
    assert len(set(ips)) == 2  # two VMs, two different reserved addresses


def test_list_and_status_show_only_stagingvm_vms(manager: Manager, base: bases.BaseImage) -> None:
    manager.start("b-vm", base="base", wait=False)
    manager.start("a-vm", base="base", wait=False)
    assert [info.name for info in manager.list()] == ["a-vm", "b-vm"]  # not foreign-vm
    assert manager.status("a-vm").state == "running"
    with pytest.raises(NotFoundError, match="not managed by stagingvm"):
        manager.status("foreign-vm")
    with pytest.raises(NotFoundError, match="no VM named"):
        manager.status("missing")
    doc = manager.status("a-vm").to_json()
    assert doc["name"] == "a-vm" and doc["base"] == "base" and doc["state"] == "running"
    assert set(doc) >= {"ip", "mac", "memory_mib", "vcpus", "created_at", "uptime_seconds", "disk"}


def test_refuses_an_existing_name(manager: Manager, base: bases.BaseImage) -> None:
    manager.start("dup", base="base", wait=False)
    with pytest.raises(ConflictError, match="already exists"):
        manager.start("dup", base="base", wait=False)
    with pytest.raises(ConflictError, match="already exists"):
        manager.start("foreign-vm", base="base", wait=False)
    assert manager.conn.lookupByName("foreign-vm").isActive()  # untouched


def test_missing_base_creates_nothing(manager: Manager) -> None:
    with pytest.raises(NotFoundError, match="no base image 'nope'"):
        manager.start("lonely", base="nope", wait=False)
    assert leftovers(manager, "lonely") == []


def test_destroy_leaves_nothing(manager: Manager, base: bases.BaseImage) -> None:
    manager.start("gone", base="base", wait=False)
    (manager.settings.vm_dir("gone") / "known_hosts").write_text("pinned\n")
    assert leftovers(manager, "gone") == ["domain", "overlay", "DHCP host entry", "VM directory"]
    manager.destroy("gone")
    assert leftovers(manager, "gone") == []
    # The base and the foreign objects stay.
    pool = storage.require_pool(manager.conn, manager.settings.pool_name)
    assert storage.volume_lookup(pool, base.volume) is not None
    assert manager.conn.lookupByName("foreign-vm").isActive()
    with pytest.raises(NotFoundError):
        manager.destroy("gone")


def test_destroy_refuses_foreign_domains(manager: Manager) -> None:
    with pytest.raises(NotFoundError, match="not managed by stagingvm"):
        manager.destroy("foreign-vm")
    assert manager.conn.lookupByName("foreign-vm").isActive()


def test_destroy_cleans_leftovers_of_an_interrupted_run(
    manager: Manager, base: bases.BaseImage
) -> None:
    manager.start("torn", base="base", wait=False)
    dom = manager.conn.lookupByName("torn")
    dom.destroy()
    dom.undefine()  # as if a destroy had died half-way
    assert leftovers(manager, "torn") == ["overlay", "DHCP host entry", "VM directory"]
    manager.destroy("torn")
    assert leftovers(manager, "torn") == []


def test_stop_and_force_stop(manager: Manager, base: bases.BaseImage) -> None:
    manager.start("s1", base="base", wait=False)
    assert manager.stop("s1").state == "shut off"
    assert manager.stop("s1").state == "shut off"  # stopping a stopped VM is fine
    manager.start("s2", base="base", wait=False)
    assert manager.stop("s2", force=True).state == "shut off"
    with pytest.raises(NotFoundError):
        manager.stop("foreign-vm")


def test_start_boots_a_stopped_vm_again_as_it_is(manager: Manager, base: bases.BaseImage) -> None:
    first = manager.start("again", base="base", wait=False)
    net = manager.conn.networkLookupByName(manager.settings.network.name)
    reserved = [h for h in network.dhcp_hosts(net) if h.name == "again"]
    overlay = manager.conn.storagePoolLookupByName(
        manager.settings.pool_name
    ).storageVolLookupByName(overlay_name("again"))
    overlay_key = overlay.key()
    (manager.settings.vm_dir("again") / "known_hosts").write_text("pinned\n")
    manager.stop("again", force=True)
    with pytest.raises(ConflictError, match="options for a new VM do not apply"):
        manager.start("again", base="base", wait=False)
    second = manager.start("again", wait=False)
    assert second.state == "running"
    assert (second.mac, second.created_at) == (first.mac, first.created_at)
    assert [h for h in network.dhcp_hosts(net) if h.name == "again"] == reserved  # same address
    # Same disk (no new overlay) and the pinned host key is kept.
    pool = storage.require_pool(manager.conn, manager.settings.pool_name)
    assert storage.volume_lookup(pool, overlay_name("again")).key() == overlay_key
    assert (manager.settings.vm_dir("again") / "known_hosts").read_text() == "pinned\n"
    with pytest.raises(ConflictError, match="already exists"):
        manager.start("again", wait=False)  # running: a second start is refused


def test_rebuild_keeps_mac_and_address(manager: Manager, base: bases.BaseImage) -> None:
    first = manager.start(
        "rb",
        base="base",
        wait=False,
        label="keep",
        memory=1024,
        credentials={"extra": "v", "stagingvm.authorized_keys.ai-worker": "ssh-ed25519 AAAA w"},
    )
    net = network.require(manager.conn, "staging")
    ip_before = [h.ip for h in network.dhcp_hosts(net) if h.name == "rb"]
    manager.start("other", base="base", wait=False)
    second = manager.rebuild("rb", wait=False)
    assert second.mac == first.mac
    assert [h.ip for h in network.dhcp_hosts(net) if h.name == "rb"] == ip_before
    assert second.label == "keep" and second.memory_mib == 1024
    facts = vdomain.facts(manager.conn.lookupByName("rb"))
    assert facts.credentials["extra"] == "v"
    # another user's key (start --user-key) survives; root's is stagingvm's, put in afresh
    assert facts.credentials["stagingvm.authorized_keys.ai-worker"] == "ssh-ed25519 AAAA w"
    assert facts.credentials[ROOT_KEY_CREDENTIAL].startswith("ssh-ed25519 ")
    assert second.created_at >= first.created_at


@pytest.mark.parametrize(
    "name",
    [
        "a<b",
        "x'><evil/>",
        "a&b",
        "../etc",
        "a/b",
        "..",
        "ünïcode",
        "a" * 64,
        "web\n",
        "Web",
        "-lead",
        "",
        "sp ace",
    ],
)
def test_hostile_names_are_refused_before_anything_exists(
    manager: Manager, base: bases.BaseImage, name: str
) -> None:
    before_domains = sorted(d.name() for d in manager.conn.listAllDomains())
    pool = storage.require_pool(manager.conn, manager.settings.pool_name)
    before_vols = sorted(pool.listVolumes())
    vms_dir = manager.settings.vms_dir
    with pytest.raises(InvalidInputError):
        manager.start(name, base="base", wait=False)
    with pytest.raises(InvalidInputError):
        manager.start("fine", base=name, wait=False)
    for verb in (manager.destroy, manager.stop, manager.status, manager.rebuild):
        with pytest.raises(InvalidInputError):
            verb(name)
    assert sorted(d.name() for d in manager.conn.listAllDomains()) == before_domains
    assert sorted(pool.listVolumes()) == before_vols
    assert not vms_dir.exists() or list(vms_dir.iterdir()) == []
    assert not (manager.settings.locks_dir).exists() or all(
        p.name in ("host.lock",) for p in manager.settings.locks_dir.iterdir()
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"memory": 0},
        {"vcpus": -1},
        {"label": "bad\x00label"},
        {"pr_ref": "x" * 500},
        {"credentials": {"bad/name": "v"}},
    ],
)
def test_bad_options_are_refused(manager: Manager, base: bases.BaseImage, kwargs: Any) -> None:
    with pytest.raises(InvalidInputError):
        manager.start("opts", base="base", wait=False, **kwargs)
    assert leftovers(manager, "opts") == []


def test_failed_start_cleans_up(settings: Settings, conn: Any, routes_file: Path) -> None:
    manager = make_manager(
        with_timeouts(settings, banner=0.3), conn, routes_file, probes=SilentProbes()
    )
    add_base(manager)
    with pytest.raises(WaitTimeoutError) as err:
        manager.start("flaky", base="base", wait=True)
    assert err.value.phase == "SSH banner"
    assert leftovers(manager, "flaky") == []


def test_failed_start_keeps_vm_on_request(settings: Settings, conn: Any, routes_file: Path) -> None:
    manager = make_manager(
        with_timeouts(settings, banner=0.2), conn, routes_file, probes=SilentProbes()
    )
    add_base(manager)
    with pytest.raises(WaitTimeoutError):
        manager.start("kept", base="base", wait=True, keep_on_failure=True)
    assert leftovers(manager, "kept") == ["domain", "overlay", "DHCP host entry", "VM directory"]
    manager.destroy("kept")
    assert leftovers(manager, "kept") == []


def test_two_concurrent_starts_of_one_name(
    settings: Settings, conn: Any, routes_file: Path
) -> None:
    """One start wins; the other, waiting on the VM lock, reports "already exists"."""
    slow = make_manager(
        with_timeouts(settings, banner=0.5), conn, routes_file, probes=SilentProbes()
    )
    add_base(slow)
    # The winner holds the VM lock through its (failing) readiness wait with keep_on_failure,
    # so the loser finds the domain while it waits for the lock.
    results: dict[str, BaseException | None] = {}
    barrier = threading.Barrier(2)

    def run(tag: str) -> None:
        barrier.wait()
        try:
            slow.start("race", base="base", wait=True, keep_on_failure=True)
            results[tag] = None
        except BaseException as exc:
            results[tag] = exc

    threads = [threading.Thread(target=run, args=(t,)) for t in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    kinds = sorted(type(exc).__name__ for exc in results.values())
    assert kinds == ["ConflictError", "WaitTimeoutError"], results
    conflict = next(e for e in results.values() if isinstance(e, ConflictError))
    assert "already exists" in str(conflict)
    assert [d.name() for d in conn.listAllDomains() if d.name() == "race"] == ["race"]


def test_address_and_ssh_target(manager: Manager, base: bases.BaseImage) -> None:
    info = manager.start("addr", base="base", wait=False)
    ip = manager.address("addr")
    assert ip == info.ip
    target = manager.ssh_target("addr", user="ai-worker")
    assert (target.host, target.port, target.user) == (ip, 22, "ai-worker")
    assert target.known_hosts == manager.settings.vm_dir("addr") / "known_hosts"
    assert target.key_path == manager.settings.ssh_key_path
    manager.stop("addr", force=True)
    with pytest.raises(NotFoundError, match="no IPv4 address"):
        manager.address("addr")


def test_accel_setting_picks_the_domain_type(
    settings: Settings, conn: Any, routes_file: Path
) -> None:
    from dataclasses import replace

    manager = Manager(
        replace(settings, accel="tcg"), conn=conn, routes_path=routes_file, probes=SilentProbes()
    )
    add_base(manager)
    info = manager.start("soft", base="base", wait=False)
    assert info.domain_type == "qemu"
    assert manager.host.accel() == ("qemu", settings.timeouts.tcg_factor)


class CrashingProbes(SilentProbes):
    """The guest crashes while stagingvm waits for its SSH banner (as if it panicked)."""

    def __init__(self, conn: Any, name: str) -> None:
        super().__init__()
        self.conn, self.name, self.calls = conn, name, 0

    def banner(self, host: str, port: int, timeout: float) -> str | None:
        self.calls += 1
        if self.calls == 3:
            self.conn.lookupByName(self.name).destroy()  # on_crash=destroy: what a crash does
        return None


def test_a_guest_that_dies_fails_the_wait_at_once_and_is_cleaned_up(
    settings: Settings, conn: Any, routes_file: Path
) -> None:
    from stagingvm.errors import GuestFailedError

    probes = CrashingProbes(conn, "crashy")
    # A banner time-out of an hour: only the crash detection can end this wait.
    manager = make_manager(with_timeouts(settings, banner=3600), conn, routes_file, probes=probes)
    add_base(manager)
    with pytest.raises(GuestFailedError) as err:
        manager.start("crashy", base="base", wait=True)
    assert err.value.phase == "SSH banner"
    assert "shut off" in str(err.value)
    assert probes.calls == 3  # no poll after the crash
    assert err.value.elapsed < 5
    assert leftovers(manager, "crashy") == []


def test_rebuild_uses_the_base_as_it_is_now(manager: Manager) -> None:
    from stagingvm.virt.bases import write_record

    old = add_base(manager, "img")
    manager.start("fresh", base="img", wait=False)
    # "build" imports a new version of the base under the same name.
    pool = storage.require_pool(manager.conn, manager.settings.pool_name)
    new_volume = bases.volume_name("img", "key-2")
    new = pool.createXML(
        storage.render_volume(new_volume, capacity=old.virtual_size, fmt="qcow2", mode="0444"), 0
    )
    write_record(
        manager.settings.data_dir,
        bases.BaseImage(**{**old.to_json(), "volume": new_volume, "path": new.path()}),
    )
    info = manager.rebuild("fresh", wait=False)
    assert info.base == "img" and info.base_volume == new_volume
    overlay = storage.volume_lookup(pool, overlay_name("fresh"))
    assert overlay is not None
    assert xmlrender.parse(overlay.XMLDesc(0)).findtext("backingStore/path") == new.path()


def test_start_checks_everything_before_it_imports_or_makes_keys(
    manager: Manager, base: bases.BaseImage, tmp_path: Path
) -> None:
    """--image and --user-key are handled by the library after validation, so a bad name
    or a bad user leaves no imported base and no key pair behind."""
    disk = tmp_path / "disk.qcow2"
    disk.write_bytes(b"QFI\xfb" + bytes(508))
    pool = storage.require_pool(manager.conn, manager.settings.pool_name)
    before = sorted(pool.listVolumes())
    for kwargs in (
        {"name": "Bad Name", "image": disk, "user_keys": ["ai-worker"]},
        {"name": "fine", "image": disk, "user_keys": ["bad;user"]},
        {"name": "fine", "image": disk, "memory": 1},
    ):
        with pytest.raises(InvalidInputError):
            manager.start(wait=False, **kwargs)
    assert sorted(pool.listVolumes()) == before
    assert not manager.settings.keys_dir.exists() or list(manager.settings.keys_dir.iterdir()) == []


def test_a_user_key_reaches_a_new_vm_and_a_stopped_vm_refuses_new_options(
    manager: Manager, base: bases.BaseImage
) -> None:
    manager.start("keyed", base="base", wait=False, user_keys=["ai-worker"])
    found = vdomain.facts(manager.conn.lookupByName("keyed"))
    assert "stagingvm.authorized_keys.ai-worker" in found.credentials
    manager.stop("keyed", force=True)
    with pytest.raises(ConflictError, match="options for a new VM do not apply"):
        manager.start("keyed", wait=False, user_keys=["ai-worker"])
