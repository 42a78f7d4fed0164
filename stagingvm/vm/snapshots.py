"""Snapshots of a ready VM (``snapshot``) and going back to one (``revert``), through libvirt.

Internal qcow2 snapshots with memory state (``virDomainSnapshotCreateXML`` with
``<memory snapshot='internal'/>``): libvirt has QEMU write the guest's RAM and device state
into the VM's own qcow2 overlay beside the disk's snapshot, so a revert brings the guest back
*running*, with the same MAC, DHCP address, SSH host key and authorized keys, and there are
no extra files to track: ``destroy`` (undefine with the snapshots' metadata, then delete the
overlay) removes them all. Why not external snapshots: they add an overlay file per snapshot
and a memory file, and libvirt 9.0 (this project's hosts) cannot revert to them (support
landed in mid-2023, libvirt 9.7) without a hand-made chain.

After a revert the guest's clock stands where it stood at the snapshot; root's ``date -s``
sets it to the host's time, so certificates, logs and time stamps in checks stay sensible.
Nothing of a check run is in a snapshot taken of a ready VM: each check plants fresh nonces
as root after the revert (``checks.runner.run_check`` makes new ``RunFacts`` every run).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stagingvm.errors import ConflictError, NotFoundError
from stagingvm.names import validate_name
from stagingvm.virt import domain as vdomain
from stagingvm.virt import network
from stagingvm.virt.connection import translate
from stagingvm.virt.xmlrender import load_template, parse, set_text, to_xml
from stagingvm.vm.start import wait_ready

if TYPE_CHECKING:
    import libvirt

    from stagingvm.vm.manager import Manager

READY = "ready"
"""The snapshot ``snapshot`` takes and ``revert`` (and ``check --reset``) go back to by default."""


@dataclass(frozen=True)
class SnapshotInfo:
    name: str
    created_at: int  # seconds since the epoch, as libvirt records it
    state: str  # the domain's state when it was taken (running: memory included)

    def to_json(self) -> dict[str, Any]:
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created_at))
        return {"name": self.name, "created_at": created, "state": self.state}


def render_snapshot(name: str, description: str) -> str:
    root = load_template("snapshot")
    set_text(root, "name", validate_name(name, what="snapshot name"))
    set_text(root, "description", description)
    return to_xml(root)


def snapshots_of(dom: libvirt.virDomain) -> list[SnapshotInfo]:
    """The domain's snapshots, oldest first."""
    found = []
    for snap in dom.listAllSnapshots(0):
        root = parse(str(snap.getXMLDesc(0)))
        found.append(
            SnapshotInfo(
                name=root.findtext("name", ""),
                created_at=int(root.findtext("creationTime", "0") or 0),
                state=root.findtext("state", ""),
            )
        )
    return sorted(found, key=lambda s: (s.created_at, s.name))


def create(manager: Manager, name: str, snapshot: str = READY) -> SnapshotInfo:
    """Snapshot the running VM *name* (disk and memory) as *snapshot*; an old one of that
    name is replaced."""
    try:
        return _create(manager, name, snapshot)
    except Exception as exc:
        mapped = translate(exc, manager.settings.uri)
        if mapped is None:
            raise
        raise mapped from exc


def revert(manager: Manager, name: str, snapshot: str = READY, *, wait: bool = True) -> None:
    """Bring VM *name* back to *snapshot*, running; wait until SSH login works again (the
    pinned host key only), then set the guest's clock to the host's."""
    try:
        _revert(manager, name, snapshot, wait=wait)
    except Exception as exc:
        mapped = translate(exc, manager.settings.uri)
        if mapped is None:
            raise
        raise mapped from exc


def _create(manager: Manager, name: str, snapshot: str) -> SnapshotInfo:
    import libvirt

    validate_name(name)
    validate_name(snapshot, what="snapshot name")
    host = manager.host
    with host.vm_lock(name):
        dom, _found = vdomain.require_owned(host.conn, name)
        if vdomain.state(dom) not in vdomain.RUNNING_STATES:
            raise ConflictError(
                f"VM {name} is not running: a snapshot of a ready VM needs it running",
                hint=f"`pr-test-vm start {name}` first",
            )
        try:
            dom.snapshotLookupByName(snapshot, 0).delete(0)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT:
                raise
        with host.progress.phase(f"taking snapshot {snapshot} of {name}"):
            dom.snapshotCreateXML(render_snapshot(snapshot, f"stagingvm: {name} ready"), 0)
        return next(s for s in snapshots_of(dom) if s.name == snapshot)


def _revert(manager: Manager, name: str, snapshot: str, *, wait: bool) -> None:
    import libvirt

    validate_name(name)
    validate_name(snapshot, what="snapshot name")
    host = manager.host
    settings = host.settings
    with host.vm_lock(name):
        dom, found = vdomain.require_owned(host.conn, name)
        try:
            snap = dom.snapshotLookupByName(snapshot, 0)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT:
                raise
            raise NotFoundError(
                f"VM {name} has no snapshot {snapshot!r}",
                hint=f"`pr-test-vm snapshot {name} --name {snapshot}` takes one; "
                f"`pr-test-vm status {name}` lists them",
            ) from None
        with host.progress.phase(f"reverting {name} to snapshot {snapshot}"):
            dom.revertToSnapshot(snap, libvirt.VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING)
        if not wait or found.mac is None:
            return
        net = network.lookup(host.conn, settings.network.name)
        wait_ready(
            host,
            dom,
            name,
            mac=found.mac,
            net=net,
            factor=settings.timeouts.factor(found.domain_type),
            pinned=True,  # the key pinned when it first ran: no other
        )
    _set_clock(manager, name)


def _set_clock(manager: Manager, name: str) -> None:
    """The guest's clock jumped back to the snapshot's time: root sets it to the host's."""
    from stagingvm.errors import StagingVMError
    from stagingvm.ssh.client import GuestSSH

    try:
        with manager.host.progress.phase(f"setting the clock of {name}"):
            ssh = GuestSSH.to(manager.ssh_target(name, "root"), timeout=30.0)
            try:
                result = ssh.run(["date", "-u", "-s", f"@{int(time.time())}"], timeout=30.0)
            finally:
                ssh.close()
    except StagingVMError as exc:
        manager.host.progress.note(f"could not set the clock of {name}: {exc.message}")
        return
    if result.exit_status != 0:
        manager.host.progress.note(
            f"could not set the clock of {name}: `date -s` exited {result.exit_status}"
        )
