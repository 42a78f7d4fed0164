"""Stopping a VM (ACPI shutdown with a time-out, or power off) and destroying it.

``destroy`` removes everything a start made: the domain, its overlay, its DHCP host entry and
its directory (console log, pinned host keys); then old volumes of its base that a re-import
retired and nothing uses any more. It tries every step even when one fails and
raises at the end, so one broken step does not leave the others' resources behind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stagingvm import datadir
from stagingvm.errors import NotFoundError, StagingVMError
from stagingvm.virt import bases, network, storage
from stagingvm.virt import domain as vdomain
from stagingvm.vm.host import VMHost, overlay_name
from stagingvm.vm.undo import Undo
from stagingvm.vm.waits import Phase, PhaseRunner

if TYPE_CHECKING:
    import libvirt


def shutdown(
    host: VMHost, dom: libvirt.virDomain, found: vdomain.DomainFacts, timeout: float | None
) -> None:
    """ACPI shutdown of *dom*, waited for; the time-out scales with software emulation."""
    settings = host.settings
    if timeout is None:
        timeout = settings.timeouts.shutdown * settings.timeouts.factor(found.domain_type)
    dom.shutdown()
    runner = PhaseRunner(
        guest_gone=lambda: None,
        console_tail=lambda n: [],
        clock=host.clock,
        progress=host.progress,
    )
    runner.run(
        Phase(
            "ACPI shutdown",
            timeout,
            lambda: True if vdomain.state(dom) in vdomain.DEAD_STATES else None,
            interval=0.5,
            hint=f"the guest ignored the ACPI power button: `pr-test-vm stop --force {found.name}`",
        )
    )


def destroy_locked(host: VMHost, name: str, dom: libvirt.virDomain | None) -> None:
    """Remove VM *name* (its domain *dom*, looked up by the caller) and all its leftovers;
    the caller holds its VM lock."""
    conn = host.conn
    base = None
    if dom is not None:
        meta = vdomain.owned(dom, name).metadata  # refuses foreign domains
        base = meta.base if meta is not None else None
    pool = storage.pool_lookup(conn, host.settings.pool_name)
    net = host.network()
    vm_dir = host.settings.vm_dir(name)
    leftovers = (
        vm_dir.exists()
        or (pool is not None and storage.volume_lookup(pool, overlay_name(name)) is not None)
        or (net is not None and any(h.name == name for h in network.dhcp_hosts(net)))
    )
    if dom is None and not leftovers:
        raise NotFoundError(
            f"no VM named {name!r}", hint="`pr-test-vm list` shows the VMs stagingvm manages"
        )
    steps = Undo()  # pushed in reverse: runs power off, undefine, overlay, DHCP, directory
    data_dir = host.settings.data_dir
    if pool is not None and base is not None:  # runs last: the base's retired volumes
        steps.push(
            "retire old volumes of its base", lambda: bases.prune(conn, pool, data_dir, base)
        )
    steps.push("remove the VM directory", lambda: datadir.remove_tree(data_dir, vm_dir))
    if net is not None:
        steps.push("remove the DHCP host entry", lambda: host.remove_dhcp(net, name))
    if pool is not None:
        overlay = overlay_name(name)
        steps.push("delete the overlay", lambda: storage.delete_volume(pool, overlay))
    if dom is not None:
        steps.push("undefine the domain", lambda: vdomain.undefine(dom))
        steps.push("power off the domain", lambda: vdomain.power_off(dom))
    with host.progress.phase(f"destroying {name}"):
        failures = steps.run()
    if failures:
        raise StagingVMError(
            f"destroy of {name} left something behind: " + "; ".join(failures),
            hint=f"run `pr-test-vm destroy {name}` again",
        )
