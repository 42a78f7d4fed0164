"""The phases a starting VM goes through before it counts as ready.

domain running -> DHCP lease -> SSH banner -> SSH login. Time-outs come from
``Settings.timeouts`` times a factor (software emulation is several times slower than KVM).
The SSH probes are behind a small protocol so the phases can be driven without a network.

Why it is quick once sshd answers: the SSH code (paramiko) is imported while the guest is
still waiting for its lease (:meth:`SSHProbes.prepare`), the banner is polled every 50 ms,
and the first login goes over the very connection that saw the banner, so the key exchange
starts the moment sshd greets instead of after a poll interval and a second connection.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from stagingvm.errors import HostKeyError, InvalidInputError, StagingVMError
from stagingvm.progress import NULL_PROGRESS, Progress
from stagingvm.settings import Timeouts
from stagingvm.virt import address, consolelog
from stagingvm.virt import domain as vdomain
from stagingvm.virt.connection import error_code
from stagingvm.vm.waits import Clock, Phase, PhaseRunner

if TYPE_CHECKING:
    import libvirt

    from stagingvm.ssh.jump import JumpConnection, JumpHost

SSH_PORT = 22
BANNER_PROBE_TIMEOUT = 2.0
"""Seconds one banner probe may take once sshd accepted the connection, at KVM speed. An
emulated guest's sshd needs several seconds to fork and greet under load; a probe that gave up
after 1 s would never see it (and each retry costs the guest another sshd process)."""
LOGIN_TIMEOUT = 10.0
LEASE_INTERVAL = 0.2
BANNER_INTERVAL = 0.05
"""A refused connection costs the guest one RST; polling this often adds at most 50 ms."""
LOGIN_INTERVAL = 1.0


class Probes(Protocol):
    """``banner`` and ``login`` are required. A probe object may also have ``prepare()``
    (called once before the lease phase) and ``release(host)`` (called when the wait ends, to
    drop any connection it kept); :func:`wait_until_ready` calls them if they exist."""

    def banner(self, host: str, port: int, timeout: float) -> str | None: ...

    def login(
        self,
        host: str,
        *,
        user: str,
        key_path: Path,
        known_hosts: Path,
        timeout: float,
        record_first_key: bool,
    ) -> bool: ...


class SSHProbes:
    """The real probes: read the SSH banner, then log in and run ``true``.

    The connection that saw the banner is kept (one per host) and the next login to that
    host goes over it; later attempts connect afresh. :meth:`release` closes a kept one.
    With *jump* (a guest of a remote libvirt host) every connection is a channel through
    one SSH connection to that host, kept while a wait lasts (``stagingvm.ssh.jump``).
    """

    def __init__(self, port: int = SSH_PORT, *, jump: JumpHost | None = None) -> None:
        self.port = port  # of the logins (the banner probe is told its port)
        self._lock = threading.Lock()
        self._kept: dict[tuple[str, int], Any] = {}
        self._jump: JumpConnection | None = None
        if jump is not None:
            from stagingvm.ssh.jump import JumpConnection

            self._jump = JumpConnection(jump)

    def _dial(self, host: str, port: int, timeout: float) -> Any:
        """A channel through the libvirt host; a refused one is an OSError, as for a socket
        (the guest's sshd is not up yet). The host itself failing is raised as it is."""
        from stagingvm.ssh.jump import JumpChannelError

        assert self._jump is not None
        try:
            return self._jump.dial(host, port, timeout)
        except JumpChannelError as exc:
            raise ConnectionRefusedError(str(exc)) from None

    def prepare(self) -> None:
        """Import the SSH client now (it takes a noticeable part of a second on a slow host),
        while the guest boots, instead of after sshd answered."""
        import stagingvm.ssh.client  # noqa: F401

    def banner(self, host: str, port: int, timeout: float) -> str | None:
        from stagingvm.ssh.probe import open_banner

        found = open_banner(host, port, timeout, None if self._jump is None else self._dial)
        if found is None:
            return None
        line, sock = found
        self._keep(host, port, sock)
        return line

    def release(self, host: str, port: int = SSH_PORT) -> None:
        self._keep(host, port, None)
        if self._jump is not None:
            self._jump.close()  # the next wait connects afresh

    def _keep(self, host: str, port: int, sock: Any) -> None:
        """Keep *sock* for host:port (None: keep nothing); close what was kept before."""
        with self._lock:
            old = self._kept.pop((host, port), None)
            if sock is not None:
                self._kept[(host, port)] = sock
        if old is not None:
            old.close()

    def _take(self, host: str, port: int) -> Any:
        with self._lock:
            return self._kept.pop((host, port), None)

    def login(
        self,
        host: str,
        *,
        user: str,
        key_path: Path,
        known_hosts: Path,
        timeout: float,
        record_first_key: bool,
    ) -> bool:
        """Log in and run ``true``. With *record_first_key* the guest's first key is pinned
        (a VM just created whose keys are not known beforehand); without it only keys
        already in *known_hosts* are accepted."""
        from stagingvm.ssh.client import GuestSSH

        sock = self._take(host, self.port)
        if sock is None and self._jump is not None:
            try:
                sock = self._dial(host, self.port, timeout)
            except OSError:
                return False
        try:
            ssh = GuestSSH.connect(
                host,
                user=user,
                key_path=key_path,
                known_hosts=known_hosts,
                port=self.port,
                timeout=timeout,
                record_first_key=record_first_key,
                sock=sock,
            )
        except (HostKeyError, InvalidInputError):
            if sock is not None:
                sock.close()
            raise  # a changed host key or a bad client key will not fix itself
        except StagingVMError:
            if sock is not None:
                sock.close()
            return False  # refused, reset, auth not ready yet (credentials still landing)
        try:
            return ssh.run(["true"], timeout=timeout).exit_status == 0
        except (HostKeyError, InvalidInputError):
            raise
        except StagingVMError:
            return False
        finally:
            ssh.close()


@dataclass(frozen=True)
class Guest:
    dom: libvirt.virDomain
    mac: str
    network: libvirt.virNetwork | None
    console_log: Path
    user: str
    key_path: Path
    known_hosts: Path
    record_first_key: bool = True
    """False when *known_hosts* was seeded with the keys the guest's image must have."""


def guest_gone(dom: libvirt.virDomain) -> str | None:
    """None while *dom* runs (or is paused); else what happened to it."""
    import libvirt

    try:
        code = vdomain.state(dom)
    except libvirt.libvirtError as exc:
        if error_code(exc) == libvirt.VIR_ERR_NO_DOMAIN:
            return "was destroyed"
        raise
    if code == 6:
        return "crashed"
    if code == 5:
        return "shut off"
    return None


def wait_until_ready(
    guest: Guest,
    *,
    timeouts: Timeouts,
    factor: float,
    probes: Probes,
    clock: Clock | None = None,
    progress: Progress = NULL_PROGRESS,
) -> str:
    """Run the four phases; return the guest's address. Raises WaitTimeoutError/GuestFailedError."""
    runner = PhaseRunner(
        guest_gone=lambda: guest_gone(guest.dom),
        console_tail=lambda n: consolelog.tail(guest.console_log, n),
        clock=clock,
        progress=progress,
    )
    runner.run(
        Phase(
            "domain running",
            timeouts.running * factor,
            lambda: True if vdomain.state(guest.dom) in vdomain.RUNNING_STATES else None,
            interval=0.2,
        )
    )
    prepare = getattr(probes, "prepare", None)
    if prepare is not None:
        prepare()
    ip = runner.run(
        Phase(
            "DHCP lease",
            timeouts.lease * factor,
            lambda: address.lookup_ipv4(guest.dom, guest.mac, guest.network, use_agent=False),
            interval=LEASE_INTERVAL,
            hint="the guest never asked for an address: does its image configure DHCP on a "
            "virtio NIC? The console lines above show how far it booted",
        )
    )
    release = getattr(probes, "release", None)
    try:
        _wait_for_ssh(runner, guest, ip, timeouts=timeouts, factor=factor, probes=probes)
    finally:
        if release is not None:
            release(ip)
    return ip


def _wait_for_ssh(
    runner: PhaseRunner,
    guest: Guest,
    ip: str,
    *,
    timeouts: Timeouts,
    factor: float,
    probes: Probes,
) -> None:
    """The SSH banner and SSH login phases."""
    runner.run(
        Phase(
            "SSH banner",
            timeouts.banner * factor,
            lambda: probes.banner(ip, SSH_PORT, BANNER_PROBE_TIMEOUT * factor),
            interval=BANNER_INTERVAL,
            hint=f"the guest has address {ip} but sshd does not answer: is it enabled?",
        )
    )
    runner.run(
        Phase(
            "SSH login",
            timeouts.login * factor,
            lambda: (
                True
                if probes.login(
                    ip,
                    user=guest.user,
                    key_path=guest.key_path,
                    known_hosts=guest.known_hosts,
                    timeout=LOGIN_TIMEOUT * factor,
                    record_first_key=guest.record_first_key,
                )
                else None
            ),
            interval=LOGIN_INTERVAL,
            hint="sshd answers but refuses stagingvm's key: does the image provision "
            "authorized_keys from the SMBIOS credential ssh.authorized_keys.root?",
        )
    )
