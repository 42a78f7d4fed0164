"""SSH sessions to a guest: one verified connection, many commands.

Why our own wrapper rather than ``SSHClient.exec_command``:

* only stagingvm's key is offered (no agent, no ``~/.ssh`` look-ups), and the host key is always
  checked against the VM's pinned key (:mod:`stagingvm.ssh.known_hosts`);
* commands are argument lists joined with :func:`shlex.join`, so nothing the caller passes is
  ever re-parsed by the guest's shell; the project's own scripts go on stdin to ``sh -s``;
* stdout and stderr are kept apart, the exit status is kept, and every command has a time-out
  that closes its channel and names the phase;
* many commands may run at once over one connection (the restriction checks run probes in
  parallel): each gets a channel of its own, and at most ``max_sessions`` are open at a time,
  below OpenSSH's default ``MaxSessions 10``, so the rest wait for a slot instead of failing.
  Dropbear (the tiny test guest's server) loses output or aborts the whole connection
  ("Failed assertion ... !channel->sent_close", seen with 2022.83) when sessions overlap, so
  against Dropbear the sessions of one connection run one at a time.
"""

from __future__ import annotations

import shlex
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from stagingvm.errors import HostKeyError, InvalidInputError, WaitTimeoutError
from stagingvm.ssh.channels import collect, feed_stdin, send_signal
from stagingvm.ssh.errors import SSHAuthError, SSHConnectError, SSHError, quiet_paramiko
from stagingvm.ssh.known_hosts import (
    KnownHosts,
    bad_key_error,
    host_id,
    load_client_key,
    pinning_policy,
    trust_pinned,
)

if TYPE_CHECKING:
    import paramiko

    from stagingvm.ssh.target import SSHTarget

# OpenSSH's sshd allows 10 sessions per connection by default; keep a margin for channels
# that we closed but the server has not yet torn down.
__all__ = ["CommandResult", "GuestSSH", "SSHAuthError", "SSHConnectError", "SSHError"]

DEFAULT_MAX_SESSIONS = 8
_OPEN_RETRY = 0.05  # seconds between attempts when the server refuses another channel
KILL_GRACE = 2.0  # seconds a timed-out command gets to die after SIGKILL before we hang up


@dataclass(frozen=True)
class CommandResult:
    """What one command did. ``exit_status`` is -1 if the command died of a signal."""

    exit_status: int
    stdout: bytes
    stderr: bytes
    duration: float

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


class GuestSSH:
    """One authenticated SSH connection to a guest; use :meth:`connect` to make one."""

    def __init__(
        self,
        client: paramiko.SSHClient,
        *,
        host: str,
        port: int,
        user: str,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
    ) -> None:
        self._client = client
        self.host = host
        self.port = port
        self.user = user
        transport = client.get_transport()
        #: The server's identification line, e.g. ``SSH-2.0-OpenSSH_9.2``.
        self.server_version = transport.remote_version if transport is not None else ""
        if "dropbear" in self.server_version.lower():
            max_sessions = 1
        self.max_sessions = max_sessions
        self._slots = threading.BoundedSemaphore(max_sessions)
        self._closing: list[Callable[[], None]] = []  # after the client: e.g. the jump host

    @classmethod
    def to(cls, target: SSHTarget, **options: Any) -> GuestSSH:
        """:meth:`connect` to *target* (host, port, user, key and pinned known_hosts);
        *options* are connect's others (``timeout``, ``max_sessions``, ...).

        A target with a ``jump`` (a guest of a remote libvirt host) is reached over a
        ``direct-tcpip`` channel of an SSH connection to that host, which this session owns.
        """
        jump = None
        if target.jump is not None:
            from stagingvm.ssh.jump import JumpConnection

            jump = JumpConnection(target.jump, timeout=options.get("timeout", 10.0))
            try:
                options["sock"] = jump.dial(target.host, target.port, jump.timeout)
            except BaseException:
                jump.close()
                raise
        try:
            session = cls.connect(
                target.host,
                user=target.user,
                key_path=target.key_path,
                known_hosts=target.known_hosts,
                port=target.port,
                **options,
            )
        except BaseException:
            if jump is not None:
                options["sock"].close()
                jump.close()
            raise
        if jump is not None:
            session._closing.append(jump.close)
        return session

    @classmethod
    def connect(
        cls,
        host: str,
        *,
        user: str,
        key_path: Path,
        known_hosts: Path,
        port: int = 22,
        timeout: float = 10.0,
        record_first_key: bool = False,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        sock: socket.socket | paramiko.Channel | None = None,
    ) -> GuestSSH:
        """Connect, verify the host key, log in as *user* with the key at *key_path*.

        *sock*: an already connected socket to *host* to use instead of a new connection
        (e.g. :class:`stagingvm.ssh.probe.ReplaySocket` from the banner probe, or a channel
        through the libvirt host from :mod:`stagingvm.ssh.jump`); the session closes it,
        but if this raises the caller must close it.

        Raises HostKeyError (key unknown or changed), SSHAuthError (key refused),
        SSHConnectError (anything else on the way: refused, timed out, protocol error).
        """
        import paramiko

        quiet_paramiko()
        key_path = Path(key_path)
        pkey = load_client_key(key_path)
        pinned = KnownHosts(known_hosts)
        client = paramiko.SSHClient()
        trust_pinned(client, pinned, host, port)
        client.set_missing_host_key_policy(
            pinning_policy(pinned, port=port, record_first_key=record_first_key)
        )
        target = f"{user}@{host_id(host, port)}"
        try:
            client.connect(
                host,
                port=port,
                username=user,
                pkey=pkey,
                timeout=timeout,
                banner_timeout=timeout,
                auth_timeout=timeout,
                channel_timeout=timeout,
                allow_agent=False,
                look_for_keys=False,
                sock=sock,
            )
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise bad_key_error(pinned.path, host, port, exc) from None
        except HostKeyError:
            client.close()
            raise
        except paramiko.AuthenticationException as exc:
            client.close()
            raise SSHAuthError(
                f"{target} refused stagingvm's key {key_path} "
                f"({pkey.get_name()} {pkey.fingerprint}): {exc}",
                hint=f"is {key_path}.pub in ~{user}/.ssh/authorized_keys on the guest? "
                "Keys are handed over only when stagingvm starts the VM",
            ) from None
        except TimeoutError:
            client.close()
            raise SSHConnectError(f"SSH to {target} timed out after {timeout:g} s") from None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            client.close()
            raise SSHConnectError(f"SSH to {target} failed: {exc or type(exc).__name__}") from None
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(30)
        return cls(client, host=host, port=port, user=user, max_sessions=max_sessions)

    # -- commands -------------------------------------------------------------------------

    def run(
        self, argv: Sequence[str], *, timeout: float, stdin: bytes | None = None
    ) -> CommandResult:
        """Run *argv* on the guest; the guest's shell sees ``shlex.join(argv)``.

        Without *stdin* the command reads end-of-file at once. Raises WaitTimeoutError
        (phase ``command``) when it does not finish within *timeout* seconds.
        """
        if isinstance(argv, str | bytes) or not argv:
            raise InvalidInputError("a command must be a non-empty list of arguments")
        return self._execute(shlex.join(argv), timeout=timeout, stdin=stdin)

    def run_script(
        self,
        script: str,
        *,
        timeout: float,
        user_shell: str = "sh",
        args: Sequence[str] = (),
    ) -> CommandResult:
        """Run one of the project's own shell scripts: sent on stdin to ``sh -s``.

        The script never travels on a command line (no quoting, no length limit); *args*
        become its positional parameters ``$1``... The script cannot read stdin itself.
        """
        return self.run(
            [user_shell, "-s", "--", *args], timeout=timeout, stdin=script.encode("utf-8")
        )

    def interactive(
        self,
        argv: Sequence[str] | None = None,
        *,
        stdin_fd: int | None = None,
        stdout_fd: int | None = None,
        stderr_fd: int | None = None,
        pty: bool | None = None,
        term: str | None = None,
    ) -> int:
        """A login shell (or *argv*) wired to the local terminal; returns the exit status.

        See :func:`stagingvm.ssh.interactive.bridge` for the terminal handling.
        """
        from stagingvm.ssh.interactive import bridge

        with self._slots:  # a session like any other (one at a time against Dropbear)
            channel = self._open_channel(time.monotonic() + 30.0)
            try:
                return bridge(
                    channel,
                    shlex.join(argv) if argv else None,
                    stdin_fd=stdin_fd,
                    stdout_fd=stdout_fd,
                    stderr_fd=stderr_fd,
                    pty=pty,
                    term=term,
                    lost=self._lost_error,
                )
            finally:
                channel.close()

    # -- connection -----------------------------------------------------------------------

    def close(self) -> None:
        self._client.close()
        while self._closing:
            self._closing.pop()()

    def __enter__(self) -> GuestSSH:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------

    def _lost_error(self, what: str) -> SSHConnectError:
        return SSHConnectError(
            f"SSH connection to {self.user}@{host_id(self.host, self.port)} lost {what}"
        )

    def _transport(self) -> paramiko.Transport:
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise self._lost_error("(closed)")
        return transport

    def _open_channel(self, deadline: float) -> paramiko.Channel:
        import paramiko

        while True:
            remaining = deadline - time.monotonic()
            try:
                return self._transport().open_session(timeout=max(remaining, 0.1))
            except (OSError, EOFError, paramiko.SSHException) as exc:
                # Refused ("administratively prohibited": the server's MaxSessions is lower
                # than ours, or it has not torn down a closed channel yet). paramiko keeps the
                # reason in one slot per connection, so a concurrent opener may see a bare
                # SSHException instead of ChannelException: retry both while the connection
                # lives, until the deadline.
                transport = self._client.get_transport()
                if transport is None or not transport.is_active():
                    raise self._lost_error(f"while opening a session: {exc}") from None
                if remaining <= _OPEN_RETRY:
                    raise SSHConnectError(
                        f"the SSH server of {self.host} refused a new session: {exc}"
                    ) from None
                time.sleep(_OPEN_RETRY)

    def _execute(self, command: str, *, timeout: float, stdin: bytes | None) -> CommandResult:
        import paramiko

        started = time.monotonic()
        deadline = started + timeout
        if not self._slots.acquire(timeout=max(timeout, 0.0)):
            raise self._timeout(command, timeout, started, "waiting for a free session")
        try:
            channel = self._open_channel(deadline)
            try:
                channel.exec_command(command)
                feeder = feed_stdin(channel, stdin)
                stdout, stderr = collect(channel, deadline)
                if stdout is None or stderr is None:
                    send_signal(channel, "KILL")
                    # Let the server see its child exit while the channel still exists:
                    # Dropbear 2022.83 pins a child's exit on another channel otherwise,
                    # closes that one and then aborts the whole connection.
                    channel.status_event.wait(KILL_GRACE)
                    raise self._timeout(command, timeout, started, "")
                status = channel.recv_exit_status()
            except (OSError, EOFError, paramiko.SSHException) as exc:
                raise self._lost_error(f"while running {_short(command)}: {exc}") from None
            finally:
                channel.close()
            if feeder is not None:
                feeder.join(timeout=1.0)
            transport = self._client.get_transport()
            if status == -1 and (transport is None or not transport.is_active()):
                raise self._lost_error(f"while running {_short(command)}")
            return CommandResult(status, stdout, stderr, time.monotonic() - started)
        finally:
            self._slots.release()

    def _timeout(self, command: str, timeout: float, started: float, what: str) -> WaitTimeoutError:
        suffix = f" ({what})" if what else ""
        return WaitTimeoutError(
            f"command on {self.host} did not finish within {timeout:g} s{suffix}: "
            f"{_short(command)}",
            phase="command",
            elapsed=time.monotonic() - started,
        )


def _short(command: str, limit: int = 160) -> str:
    return command if len(command) <= limit else command[: limit - 3] + "..."
