"""What every lifecycle verb shares: the connection, the locks, the accel decision, network + pool.

The Manager (``stagingvm.vm.manager``) owns one ``VMHost`` and hands it to the start path
(``stagingvm.vm.start``), the teardown (``stagingvm.vm.teardown``) and the queries
(``stagingvm.vm.info``). Keeping these here, not on the Manager, lets those modules use them
without reaching into the facade's private parts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from stagingvm import locks
from stagingvm.errors import ConflictError
from stagingvm.progress import Progress
from stagingvm.settings import Settings
from stagingvm.virt import domain as vdomain
from stagingvm.virt import network, storage
from stagingvm.virt.connection import connect, is_remote

if TYPE_CHECKING:
    import libvirt

    from stagingvm.vm.readiness import Probes
    from stagingvm.vm.waits import Clock


REMOTE_CONSOLE_DIR = Path("/var/log/libvirt/qemu")
"""libvirt's own log directory, on every host with the QEMU driver."""


def console_log_path(settings: Settings, name: str) -> Path:
    """Where the libvirt host's virtlogd writes VM *name*'s console output: the VM's folder
    in the data dir for a local libvirtd; on a remote host libvirt's own log directory (the
    runner's data dir need not exist there, and virtlogd makes no folders). A remote VM's
    log is read through ``pr-test-vm console`` (the stream), not from that file."""
    if is_remote(settings.uri):
        return REMOTE_CONSOLE_DIR / f"stagingvm-{name}.console.log"
    return settings.vm_dir(name) / "console.log"


def overlay_name(name: str) -> str:
    """The pool volume of VM *name*'s own disk (a qcow2 overlay on its base)."""
    return f"vm-{name}.qcow2"


class VMHost:
    """The host side of the lifecycle verbs on one libvirt connection.

    The connection is opened on first use; the domain type and time-out factor are decided
    on the first start that needs them (see :meth:`accel`), then kept.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        progress: Progress,
        conn: libvirt.virConnect | None,
        domain_type: str | None,
        timeout_factor: float | None,
        lock_timeout: float,
        clock: Clock,
        probes: Probes | None,
        routes_path: Path | None,
    ) -> None:
        self.settings = settings
        self.progress = progress
        self.clock = clock
        self._probes = probes
        self._conn = conn
        self._domain_type = domain_type
        self._timeout_factor = timeout_factor
        self._lock_timeout = lock_timeout
        self._routes_path = routes_path

    @property
    def probes(self) -> Probes:
        """How a start checks SSH (the real probes unless a test gave its own), made on first
        use: ``list`` and ``status`` never need them."""
        if self._probes is None:
            from stagingvm.ssh.jump import jump_for
            from stagingvm.vm.readiness import SSHProbes

            self._probes = SSHProbes(jump=jump_for(self.settings))
        return self._probes

    @probes.setter
    def probes(self, probes: Probes) -> None:
        self._probes = probes

    @property
    def conn(self) -> libvirt.virConnect:
        if self._conn is None:
            self._conn = connect(self.settings.uri)
        return self._conn

    def vm_lock(
        self, name: str, *, while_waiting: Callable[[], None] | None = None
    ) -> locks.AbstractLock:
        """VM *name*'s lock; *while_waiting* runs while another holds it (it may give up)."""
        return locks.vm_lock(
            self.settings.locks_dir, name, timeout=self._lock_timeout, while_waiting=while_waiting
        )

    def host_lock(self) -> locks.AbstractLock:
        return locks.host_lock(self.settings.locks_dir, timeout=self._lock_timeout)

    def restartable(self, dom: libvirt.virDomain, name: str) -> vdomain.DomainFacts:
        """The facts of *dom* if it is a stopped VM of stagingvm's (``start`` boots it again);
        ConflictError if it runs or is not stagingvm's."""
        found = vdomain.facts(dom)
        if found.metadata is None or vdomain.state(dom) not in vdomain.DEAD_STATES:
            raise ConflictError(
                f"a VM (libvirt domain) named {name!r} already exists",
                hint=f"pick another name, or `pr-test-vm rebuild {name}` / "
                f"`pr-test-vm destroy {name}` if it is stagingvm's",
            )
        return found

    def accel(self) -> tuple[str, float]:
        """The domain type and the time-out factor for new guests (decided once)."""
        if self._domain_type is None:
            self._domain_type, decided = self._resolve_accel()
            if self._timeout_factor is None:
                self._timeout_factor = decided
        factor = self._timeout_factor
        if factor is None:
            factor = self.settings.timeouts.factor(self._domain_type)
        return self._domain_type, factor

    def _resolve_accel(self) -> tuple[str, float | None]:
        """``resolve_accel`` decides (it probes KVM by running a guest), once per host."""
        from stagingvm.virt.accel.accel import resolve_accel  # a probe guest: starts only

        decision = resolve_accel(self.settings, self.conn, progress=self.progress)
        if decision.warning:
            self.progress.note(decision.warning)
        return str(decision.domain_type), float(decision.timeout_factor)

    def ensure_host(self) -> libvirt.virStoragePool:
        """Network and pool, idempotently, under the host lock; returns the pool."""
        from stagingvm.virt.subnets import PROC_ROUTE  # socket, ipaddress: set-up only
        from stagingvm.vm.setup import ensure_network_and_pool

        with self.host_lock():
            ensure_network_and_pool(
                self.conn,
                self.settings,
                progress=self.progress,
                routes_path=self._routes_path or PROC_ROUTE,
            )
        return storage.require_pool(self.conn, self.settings.pool_name)

    def network(self) -> libvirt.virNetwork | None:
        return network.lookup(self.conn, self.settings.network.name)

    def remove_dhcp(self, net: libvirt.virNetwork, name: str) -> None:
        with self.host_lock():
            network.remove_dhcp_host(net, name=name)
