"""Facts about stagingvm's VMs for ``status``, ``list``, ``address`` and ``ssh``.

Reading facts never takes a lock: a VM destroyed by another command while it is listed is
skipped, and the address comes from the lease without asking the guest agent (which can
take seconds) except where a caller asks for the address itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from stagingvm.errors import NotFoundError
from stagingvm.settings import Settings
from stagingvm.ssh.target import SSHTarget
from stagingvm.virt import address as vaddress
from stagingvm.virt import domain as vdomain
from stagingvm.virt import xmlrender
from stagingvm.virt.connection import error_code
from stagingvm.vm.host import VMHost
from stagingvm.vm.models import VMInfo

if TYPE_CHECKING:
    import libvirt


def info(
    conn: libvirt.virConnect,
    dom: libvirt.virDomain,
    found: vdomain.DomainFacts,
    net: libvirt.virNetwork | None,
    leases: Mapping[str, str] | None = None,
    *,
    uri: str | None = None,
) -> VMInfo:
    """The VMInfo of one stagingvm domain (its address from the lease only); its host is
    *uri* (where it was found) or else the one its metadata records.

    *leases* (MAC -> IPv4 of the network's leases, asked once for a whole list) saves the
    per-domain lookup; a MAC without a lease there is still looked up on its own."""
    meta = found.metadata
    assert meta is not None
    code = vdomain.state(dom)
    ip = None
    if found.mac and code in vdomain.RUNNING_STATES:
        ip = (leases or {}).get(found.mac.lower()) or vaddress.lookup_ipv4(
            dom, found.mac, net, use_agent=False
        )
    return VMInfo(
        name=found.name,
        state=vdomain.state_name(code),
        ip=ip,
        mac=found.mac,
        memory_mib=found.memory_mib,
        vcpus=found.vcpus,
        domain_type=found.domain_type,
        created_at=meta.created_at,
        base=meta.base,
        base_volume=meta.base_volume,
        pr_ref=meta.pr_ref,
        label=meta.label,
        disk_path=found.disk_path,
        disk_allocation=_allocation(conn, found.disk_path),
        console_log=found.console_log,
        snapshots=_snapshot_names(dom),
        host=uri or meta.host,
    )


def _snapshot_names(dom: libvirt.virDomain) -> tuple[str, ...]:
    import libvirt

    try:
        snaps = dom.listAllSnapshots(0)
    except libvirt.libvirtError:
        return ()  # a driver without snapshots, or the domain vanished meanwhile
    return tuple(str(s.getName()) for s in sorted(snaps, key=_created))


def _created(snap: libvirt.virDomainSnapshot) -> tuple[int, str]:
    """Oldest first; snapshots of the same second by name."""
    text = xmlrender.parse(str(snap.getXMLDesc(0))).findtext("creationTime", "") or "0"
    return int(text) if text.isdigit() else 0, str(snap.getName())


def _allocation(conn: libvirt.virConnect, path: str | None) -> int | None:
    import libvirt

    if path is None:
        return None
    try:
        return int(conn.storageVolLookupByPath(path).info()[2])
    except libvirt.libvirtError:
        return None


def status(host: VMHost, name: str) -> VMInfo:
    dom, found = vdomain.require_owned(host.conn, name)
    return info(host.conn, dom, found, host.network(), uri=host.settings.uri)


def list_vms(host: VMHost) -> list[VMInfo]:
    """stagingvm's VMs (domains with its metadata), sorted by name."""
    import libvirt

    net = host.network()
    leases = vaddress.network_leases(net)  # one call for every VM's address
    infos = []
    for dom, found in vdomain.owned_domains(host.conn):
        try:
            infos.append(info(host.conn, dom, found, net, leases, uri=host.settings.uri))
        except libvirt.libvirtError as exc:
            if error_code(exc) != libvirt.VIR_ERR_NO_DOMAIN:
                raise  # else: destroyed by another command while we listed
    return sorted(infos, key=lambda vm: vm.name)


def address(host: VMHost, name: str) -> str:
    """The VM's IPv4 address (lease, then network leases, then guest agent)."""
    dom, found = vdomain.require_owned(host.conn, name)
    ip = None
    if found.mac and vdomain.state(dom) in vdomain.RUNNING_STATES:
        ip = vaddress.lookup_ipv4(dom, found.mac, host.network())
    if ip is None:
        raise NotFoundError(
            f"VM {name} has no IPv4 address (yet)",
            hint=f"is it running and booted? `pr-test-vm status {name}`",
        )
    return ip


def login_key(settings: Settings, user: str) -> Path:
    """The key to log in as guest *user*: the user's own if stagingvm made one
    (``start --user-key USER``), else stagingvm's key."""
    from stagingvm.ssh.keys import user_key_path

    if user != settings.ssh.user:
        own = user_key_path(settings.keys_dir, user)
        if own.exists():
            return own
    return settings.ssh_key_path


def ssh_target(host: VMHost, name: str, user: str) -> SSHTarget:
    """How to reach *name* as *user* (see ``login_key``)."""
    from stagingvm.ssh.jump import jump_for  # paramiko and keys: not for `list`

    return SSHTarget(
        host=address(host, name),
        port=22,
        user=user,
        key_path=login_key(host.settings, user),
        known_hosts=host.settings.vm_dir(name) / "known_hosts",
        jump=jump_for(host.settings),
    )
