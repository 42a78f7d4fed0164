"""Starting a defined domain: at once, or paused until something it needs is ready.

``start`` reserves the guest's DHCP address while QEMU starts (libvirt's live update of the
network restarts dnsmasq, ~0.5 s). QEMU is started with its CPUs paused and the guest runs
only once the reservation is in place, so its first DHCP request always finds its entry.
A failed start becomes GuestFailedError with the console's last lines.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from stagingvm.errors import GuestFailedError
from stagingvm.progress import NULL_PROGRESS, Progress
from stagingvm.virt import consolelog
from stagingvm.virt import domain as vdomain
from stagingvm.virt.connection import error_code

if TYPE_CHECKING:
    import libvirt

KVM_HINT = "KVM is not usable here: use software emulation (setting accel = tcg)"


def create_paused(dom: libvirt.virDomain) -> bool:
    """Start *dom* with its CPUs paused; False if the driver cannot (libvirt's test driver)."""
    import libvirt

    try:
        dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
    except libvirt.libvirtError as exc:
        if error_code(exc) == libvirt.VIR_ERR_INVALID_ARG and not dom.isActive():
            return False
        raise
    return True


def boot(
    dom: libvirt.virDomain,
    console_log: Path,
    *,
    progress: Progress = NULL_PROGRESS,
    before_run: Callable[[], object] | None = None,
) -> None:
    """Start *dom*. With *before_run*, QEMU starts paused, *before_run* is waited for, and
    only then do the guest's CPUs run (a failure there powers the domain off again)."""
    import libvirt

    with progress.phase(f"starting {dom.name()}"):
        try:
            if before_run is None:
                dom.create()
            elif not create_paused(dom):  # a driver without paused starts: one after the other
                before_run()
                dom.create()
            else:
                try:
                    before_run()
                    dom.resume()
                except BaseException:
                    vdomain.power_off(dom)
                    raise
        except libvirt.libvirtError as exc:
            raise GuestFailedError(
                f"libvirt could not start {dom.name()}: {exc}",
                phase="domain start",
                elapsed=0.0,
                console_tail=consolelog.tail(console_log),
                hint=KVM_HINT if "kvm" in str(exc).lower() else None,
            ) from exc
