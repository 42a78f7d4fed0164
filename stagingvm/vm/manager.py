"""The Manager: the lifecycle of stagingvm VMs (import, start, stop, destroy, rebuild, status).

Every verb validates the name before touching anything, takes the VM's lock, and works only on
domains that carry stagingvm's metadata. The Manager is the facade; the work is done by
``stagingvm.vm.start`` (create, boot, wait; rebuild), ``stagingvm.vm.teardown`` (stop, destroy) and
``stagingvm.vm.info`` (status, list, address), all over the shared ``stagingvm.vm.host.VMHost``
(connection, locks, KVM-or-TCG decision, network and pool). ``start`` undoes what it created
when it fails (unless ``keep_on_failure``); ``destroy`` removes everything a start made.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

from stagingvm import locks
from stagingvm.errors import ConflictError, InvalidInputError, NotFoundError
from stagingvm.names import validate_name, validate_user
from stagingvm.progress import NULL_PROGRESS, Progress
from stagingvm.settings import Settings
from stagingvm.ssh.jump import jump_for
from stagingvm.ssh.keys import user_credentials
from stagingvm.ssh.target import SSHTarget
from stagingvm.virt import bases
from stagingvm.virt import domain as vdomain
from stagingvm.virt.bases import BaseImage
from stagingvm.virt.connection import translate
from stagingvm.virt.subnets import PROC_ROUTE
from stagingvm.vm import info as vminfo
from stagingvm.vm import start as vmstart
from stagingvm.vm import teardown
from stagingvm.vm.host import VMHost, overlay_name
from stagingvm.vm.hostkeys import recorded_host_keys
from stagingvm.vm.info import login_key
from stagingvm.vm.models import VMInfo
from stagingvm.vm.readiness import Probes, SSHProbes
from stagingvm.vm.start import ROOT_KEY_CREDENTIAL, USER_KEY_CREDENTIAL
from stagingvm.vm.waits import Clock, MonotonicClock

if TYPE_CHECKING:
    import libvirt

__all__ = [
    "ROOT_KEY_CREDENTIAL",
    "USER_KEY_CREDENTIAL",
    "BaseImage",
    "Manager",
    "SSHTarget",
    "VMInfo",
    "login_key",
    "overlay_name",
]

P = ParamSpec("P")
R = TypeVar("R")


def _libvirt_errors(
    method: Callable[Concatenate[Manager, P], R],
) -> Callable[Concatenate[Manager, P], R]:
    """Let no raw libvirt error out of a public verb: map it to a stagingvm error."""

    @functools.wraps(method)
    def wrapper(self: Manager, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            mapped = translate(exc, self.settings.uri)
            if mapped is None:
                raise
            raise mapped from exc

    return wrapper


class Manager:
    """Lifecycle of stagingvm VMs on one libvirt connection.

    *domain_type* ("kvm" or "qemu") and *timeout_factor* may come from the caller; without
    them ``stagingvm.virt.accel.accel.resolve_accel`` decides from ``settings.accel`` on the
    first start (it runs a probe guest to see whether KVM really works).
    *conn*, *clock*, *probes* and *routes_path* let tests drive it on libvirt's test driver.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        progress: Progress = NULL_PROGRESS,
        conn: libvirt.virConnect | None = None,
        domain_type: str | None = None,
        timeout_factor: float | None = None,
        lock_timeout: float = locks.DEFAULT_TIMEOUT,
        clock: Clock | None = None,
        probes: Probes | None = None,
        routes_path: Path = PROC_ROUTE,
    ) -> None:
        if domain_type not in (None, "kvm", "qemu"):
            raise InvalidInputError(f"domain type must be kvm or qemu, not {domain_type!r}")
        self.settings = settings
        self.progress = progress
        self.host = VMHost(
            settings,
            progress=progress,
            conn=conn,
            domain_type=domain_type,
            timeout_factor=timeout_factor,
            lock_timeout=lock_timeout,
            clock=clock or MonotonicClock(),
            probes=probes or SSHProbes(jump=jump_for(settings)),
            routes_path=routes_path,
        )

    @property
    def conn(self) -> libvirt.virConnect:
        return self.host.conn

    # -- base images ------------------------------------------------------------------------

    @_libvirt_errors
    def import_base(self, image: Path, name: str, *, source_key: str | None = None) -> BaseImage:
        """Copy *image* into the pool as the read-only base *name* (no-op for a known key).

        The SSH host keys stagingvm's image builder recorded for *image* (its manifest) go
        with it: VMs of this base pin them before they first run (``stagingvm.vm.hostkeys``).
        """
        validate_name(name, what="base image name")
        image = Path(image)
        if not image.is_file():
            raise NotFoundError(f"image {image} does not exist or is not a file")
        return self._import_base(image, name, source_key=source_key)

    def _import_base(self, image: Path, name: str, *, source_key: str | None = None) -> BaseImage:
        host_keys = recorded_host_keys(image)
        pool = self.host.ensure_host()
        # The upload holds the import lock of *name*, not the host lock: starts go on meanwhile.
        return bases.import_base(
            self.conn,
            pool,
            self.settings.data_dir,
            image,
            name,
            source_key=source_key,
            host_keys=host_keys,
            progress=self.progress,
        )

    # -- lifecycle --------------------------------------------------------------------------

    @_libvirt_errors
    def start(
        self,
        name: str,
        *,
        base: str | None = None,
        image: Path | None = None,
        wait: bool = True,
        keep_on_failure: bool = False,
        pr_ref: str | None = None,
        label: str | None = None,
        memory: int | None = None,
        vcpus: int | None = None,
        user_keys: Sequence[str] = (),
        credentials: Mapping[str, str] | None = None,
    ) -> VMInfo:
        """Create VM *name* from base *base* (default: the base of the same name) and boot it.

        *image* is imported as that base first; each of *user_keys* gets a key pair of its own
        (``stagingvm.ssh.keys.user_credentials``). A stopped VM of stagingvm's own is booted
        again as it is (same disk, MAC and address); the creation options apply only to a new
        VM. Everything is validated before anything is looked up or created; then, under the
        VM lock, the domain is looked up once: none (new VM), stagingvm's and stopped (boot it
        again), anything else (ConflictError).
        """
        name = validate_name(name)
        base_name: str = validate_name(base if base is not None else name, what="base image name")
        users = [validate_user(user) for user in user_keys]
        vmstart.check_options(
            pr_ref=pr_ref, label=label, memory=memory, vcpus=vcpus, credentials=credentials
        )
        if image is not None and not Path(image).is_file():
            raise NotFoundError(f"image file {image} does not exist or is not a file")
        host = self.host

        def refuse_while_waiting() -> None:  # a start that can only conflict fails at once
            dom = vdomain.lookup(self.conn, name)
            if dom is not None:
                host.restartable(dom, name)

        with host.vm_lock(name, while_waiting=refuse_while_waiting):
            dom = vdomain.lookup(self.conn, name)
            if dom is not None:
                found = host.restartable(dom, name)
                creating = [base, image, pr_ref, label, memory, vcpus, users or None]
                if any(option is not None for option in creating) or credentials:
                    raise ConflictError(
                        f"VM {name} already exists (stopped); options for a new VM do not apply",
                        hint=f"`pr-test-vm start {name}` boots it again as it is; "
                        f"`pr-test-vm destroy {name}` first for a new one",
                    )
                return vmstart.start_again(
                    host, dom, found, wait=wait, keep_on_failure=keep_on_failure
                )
            if image is not None:
                base_name = self._import_base(Path(image).resolve(), base_name).name
            keys = user_credentials(self.settings.keys_dir, users) if users else {}
            vm = vmstart.NewVM(
                name=name,
                base_name=base_name,
                memory=memory or self.settings.memory,
                vcpus=vcpus or self.settings.vcpus,
                pr_ref=pr_ref,
                label=label,
                credentials={**keys, **(credentials or {})},
            )
            return vmstart.start_new(host, vm, wait=wait, keep_on_failure=keep_on_failure)

    @_libvirt_errors
    def stop(self, name: str, *, force: bool = False, timeout: float | None = None) -> VMInfo:
        """ACPI shutdown and wait for it (or power off at once with *force*)."""
        name = validate_name(name)
        with self.host.vm_lock(name):
            dom, found = vdomain.require_owned(self.conn, name)
            if vdomain.state(dom) not in vdomain.DEAD_STATES:
                if force:
                    dom.destroy()
                else:
                    teardown.shutdown(self.host, dom, found, timeout)
            return vminfo.info(self.conn, dom, vdomain.facts(dom), self.host.network())

    @_libvirt_errors
    def destroy(self, name: str) -> None:
        """Remove VM *name* and everything stagingvm made for it."""
        name = validate_name(name)
        with self.host.vm_lock(name):
            teardown.destroy_locked(self.host, name, vdomain.lookup(self.conn, name))

    @_libvirt_errors
    def rebuild(self, name: str, *, wait: bool = True, keep_on_failure: bool = False) -> VMInfo:
        """Destroy *name* and start it again from its base, with the same MAC and address."""
        name = validate_name(name)
        with self.host.vm_lock(name):
            dom, found = vdomain.require_owned(self.conn, name)
            return vmstart.rebuild(
                self.host, dom, found, wait=wait, keep_on_failure=keep_on_failure
            )

    # -- queries ----------------------------------------------------------------------------

    @_libvirt_errors
    def status(self, name: str) -> VMInfo:
        validate_name(name)
        return vminfo.status(self.host, name)

    @_libvirt_errors
    def list(self) -> list[VMInfo]:
        """stagingvm's VMs (domains with its metadata), sorted by name."""
        return vminfo.list_vms(self.host)

    @_libvirt_errors
    def address(self, name: str) -> str:
        """The VM's IPv4 address (lease, then network leases, then guest agent)."""
        validate_name(name)
        return vminfo.address(self.host, name)

    @_libvirt_errors
    def ssh_target(self, name: str, user: str | None = None) -> SSHTarget:
        """How to reach *name* as *user* (see ``login_key``)."""
        validate_name(name)
        return vminfo.ssh_target(self.host, name, user or self.settings.ssh.user)
