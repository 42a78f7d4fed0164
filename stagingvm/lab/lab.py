"""The isolated lab: a network namespace with its own virtlogd and libvirtd.

Why: a libvirt NAT network puts a bridge and VM addresses (192.168.x) on the network stack
of whatever runs libvirtd. On a machine where traffic may only go to loopback or to hosts inside
namespaces we created (CI runners, the project's build machines), libvirtd must therefore run
inside a namespace of its own; then VM bridges, dnsmasq and the guests live there, and anything
that talks to a guest (SSH, probes, tests) runs there too (``ip netns exec NS ...``). The
libvirt socket is a file, so clients (virsh, stagingvm) reach it from anywhere.

``up`` is idempotent: it adopts a namespace and daemons that already run inside it, starts what
is missing, and refuses when a libvirtd runs outside the namespace. ``down`` stops the daemons
and deletes the namespace; it does not destroy VMs (that is ``pr-test-vm destroy``): it reports
what is left instead. A normal NixOS host (libvirtd managed by systemd) needs none of this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stagingvm.errors import ConflictError, LabError, LibvirtUnavailableError
from stagingvm.lab import daemons, netns
from stagingvm.progress import NULL_PROGRESS, Progress
from stagingvm.virt.connection import connect, forget

if TYPE_CHECKING:
    import libvirt

DEFAULT_NAMESPACE = "stagingvm-lab"
LAB_URI = "qemu:///system"
SOCKET = Path("/run/libvirt/libvirt-sock")


@dataclass(frozen=True)
class NetworkState:
    name: str
    active: bool
    autostart: bool
    bridge: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "active": self.active,
            "autostart": self.autostart,
            "bridge": self.bridge,
        }


@dataclass
class LabStatus:
    namespace: str
    namespace_exists: bool
    daemons: list[daemons.DaemonState]
    socket: str
    libvirt_answers: bool
    libvirt_version: str | None = None
    networks: list[NetworkState] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        by_name = {d.name: d for d in self.daemons}
        return (
            self.namespace_exists
            and all(d.running for d in self.daemons)
            and by_name.get("libvirtd") is not None
            and by_name["libvirtd"].in_namespace
            and self.libvirt_answers
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "namespace_exists": self.namespace_exists,
            "ready": self.ready,
            "daemons": [d.to_json() for d in self.daemons],
            "socket": self.socket,
            "libvirt_answers": self.libvirt_answers,
            "libvirt_version": self.libvirt_version,
            "networks": [n.to_json() for n in self.networks],
            "notes": list(self.notes),
        }


def _version(number: int) -> str:
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"


def network_states(conn: libvirt.virConnect) -> list[NetworkState]:
    import libvirt

    states = []
    for net in conn.listAllNetworks():
        try:
            bridge: str | None = net.bridgeName()
        except libvirt.libvirtError:
            bridge = None
        states.append(NetworkState(net.name(), bool(net.isActive()), bool(net.autostart()), bridge))
    return sorted(states, key=lambda n: n.name)


def _try_connect(uri: str) -> libvirt.virConnect | None:
    try:
        return connect(uri)
    except LibvirtUnavailableError:
        return None


def status(namespace: str = DEFAULT_NAMESPACE, *, uri: str = LAB_URI) -> LabStatus:
    """What runs where; never changes anything."""
    netns.validate_namespace(namespace)
    states = [daemons.state(d, namespace) for d in daemons.LAB_DAEMONS]
    result = LabStatus(namespace, netns.exists(namespace), states, str(SOCKET), False)
    for daemon, d in zip(daemons.LAB_DAEMONS, states, strict=True):
        if d.pid is not None and not d.in_namespace:
            why = (
                "its VM networks would be on the host network"
                if daemon.network_facing
                else "harmless, it only writes logs"
            )
            result.notes.append(f"{d.name} (pid {d.pid}) runs OUTSIDE the namespace: {why}")
    conn = _try_connect(uri)
    if conn is not None:
        result.libvirt_answers = True
        result.libvirt_version = _version(conn.getLibVersion())
        result.networks = network_states(conn)
    return result


def wait_for_libvirt(uri: str, timeout: float) -> libvirt.virConnect:
    """Connect to *uri*, retrying until the freshly started daemon answers.

    No ``forget`` here: ``connect`` already replaces a cached connection that died, and closing
    a live one would pull it from under everyone else in the process who holds it.
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = connect(uri)
            conn.getLibVersion()
            return conn
        except LibvirtUnavailableError as exc:
            if time.monotonic() >= deadline:
                raise LabError(
                    f"libvirtd runs but {uri} did not answer within {timeout:g} s: {exc}",
                    hint=f"check {SOCKET} and libvirtd's log (/var/log/libvirt/libvirtd.log)",
                ) from exc
            time.sleep(0.1)


def keep_default_network_off(conn: libvirt.virConnect, *, daemon_started: bool) -> list[str]:
    """Make sure the lab does not bring up libvirt's own ``default`` network.

    Debian's package marks it autostart; the lab has no use for it (stagingvm defines its own
    network, and 192.168.122.0/24 would only invite collisions), so autostart is turned off,
    and if the daemon we just started brought it up, it is stopped again.
    """
    import libvirt

    try:
        net = conn.networkLookupByName("default")
    except libvirt.libvirtError:
        return []
    notes = []
    if net.autostart():
        net.setAutostart(0)
        notes.append(
            "turned off autostart of libvirt's 'default' network (the lab does not use it)"
        )
        if daemon_started and net.isActive():
            net.destroy()
            notes.append("stopped libvirt's 'default' network, which the daemon had autostarted")
    return notes


def up(
    namespace: str = DEFAULT_NAMESPACE,
    *,
    uri: str = LAB_URI,
    progress: Progress = NULL_PROGRESS,
    timeout: float = 30.0,
) -> LabStatus:
    """Create (or adopt) the lab: namespace with ``lo`` up, virtlogd, libvirtd, answering socket."""
    netns.validate_namespace(namespace)
    for daemon in (d for d in daemons.LAB_DAEMONS if d.network_facing):
        stray = (
            daemons.outside(daemon, namespace)
            if netns.exists(namespace)
            else (daemons.running_pids(daemon))
        )
        if stray:
            raise LabError(
                f"{daemon.name} already runs outside the lab namespace {namespace!r} "
                f"(pid {', '.join(map(str, stray))}): VM bridges and guest addresses would "
                "appear on the host network",
                hint=f"stop it (kill {stray[0]}, or `systemctl stop {daemon.name}`) and run "
                "`pr-test-vm lab up` again; on a normal NixOS host you do not need the lab",
            )
    notes = []
    with progress.phase(f"network namespace {namespace}"):
        if netns.create(namespace):
            notes.append(f"created network namespace {namespace}")
    states = []
    for daemon in daemons.LAB_DAEMONS:
        with progress.phase(f"{daemon.name} in {namespace}"):
            got = daemons.ensure(daemon, namespace, timeout=timeout)
        states.append(got)
        notes.append(f"{got.action} {got.name} (pid {got.pid})")
        notes += got.notes
    with progress.phase(f"waiting for libvirt to answer at {uri}"):
        conn = wait_for_libvirt(uri, timeout)
    started = any(s.action == "started" and s.name == "libvirtd" for s in states)
    notes += keep_default_network_off(conn, daemon_started=started)
    result = status(namespace, uri=uri)
    result.daemons = [daemons.DaemonState(s.name, s.pid, s.in_namespace, s.action) for s in states]
    result.notes = notes + result.notes
    return result


@dataclass
class DownReport:
    namespace: str
    stopped: list[daemons.DaemonState]
    namespace_deleted: bool
    left: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "stopped": [d.to_json() for d in self.stopped if d.action == "stopped"],
            "namespace_deleted": self.namespace_deleted,
            "left": list(self.left),
        }


def _running_domains(uri: str) -> list[str]:
    conn = _try_connect(uri)
    if conn is None:
        return []
    return sorted(d.name() for d in conn.listAllDomains() if d.isActive())


def down(
    namespace: str = DEFAULT_NAMESPACE,
    *,
    uri: str = LAB_URI,
    force: bool = False,
    progress: Progress = NULL_PROGRESS,
    timeout: float = 15.0,
) -> DownReport:
    """Stop the lab's daemons and delete its namespace. VMs are not destroyed.

    With running VMs it refuses unless *force*: their QEMU processes would outlive libvirtd,
    unmanaged, in a namespace without a name.
    """
    netns.validate_namespace(namespace)
    inside_lab = any(daemons.state(d, namespace).in_namespace for d in daemons.LAB_DAEMONS)
    running = _running_domains(uri) if inside_lab else []
    if running and not force:
        raise ConflictError(
            f"VMs still run in the lab: {', '.join(running)}",
            hint="destroy them first (`pr-test-vm destroy NAME`), or `pr-test-vm lab down "
            "--force` to leave them running, unmanaged",
        )
    if inside_lab:
        # Our daemons are about to go: drop the connection to them. Not otherwise: it may be
        # the live connection to another namespace's libvirtd that others in this process use.
        forget(uri)
    stopped = []
    for daemon in reversed(daemons.LAB_DAEMONS):
        with progress.phase(f"stopping {daemon.name}"):
            stopped.append(daemons.stop(daemon, namespace, timeout=timeout))
    left = [f"process still in the namespace: {p}" for p in netns.processes_in(namespace)]
    with progress.phase(f"deleting network namespace {namespace}"):
        deleted = netns.delete(namespace)
    if running:
        left.append(f"VMs left running, unmanaged: {', '.join(running)}")
    left.append(
        "libvirt's definitions (VMs, networks, pools in /etc/libvirt and /var/lib/libvirt) "
        "stay on disk; `pr-test-vm lab up` brings them back"
    )
    for d in stopped:
        left += d.notes
    return DownReport(namespace, stopped, deleted, left)
