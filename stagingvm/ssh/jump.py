"""Reaching guests through their libvirt host: an SSH connection to the host, one
``direct-tcpip`` channel per guest connection.

A guest's address lives on its host's NAT network. When the libvirt URI is remote
(``qemu+ssh://user@host/system``), the runner cannot route to it; the host can. So every
connection to a guest (start's readiness wait, ``ssh``, ``check``, ``test``) goes through an
SSH connection to the libvirt host and asks it for a TCP channel to the guest (what OpenSSH's
``ProxyJump`` does). Where the URI's transport is not SSH (``qemu+tls://``, ``qemu+tcp://``),
``[remote] jump = "user@host"`` names the host to go through.

The host's key is pinned like a guest's, in ``<data_dir>/hosts/known_hosts``, and host-key
checking is never turned off. The first key of a host is accepted only when it is known
beforehand, the way a guest's image-recorded keys are: it must be the key the user's own
OpenSSH already trusts for that host (``~/.ssh/known_hosts``, ``/etc/ssh/ssh_known_hosts``, or
the file ``[remote] known_hosts`` names),
i.e. the very key libvirt's own ``qemu+ssh`` transport checked. Any other first key is
refused; a pinned key that changes is refused with both fingerprints.

The login key is ``[remote] key``, else the URI's ``?keyfile=``, else stagingvm's own key;
no agent and no ``~/.ssh`` keys are offered (the same rule as for guests).
"""

from __future__ import annotations

import getpass
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from stagingvm.errors import ConfigError, HostKeyError
from stagingvm.names import USER_RE
from stagingvm.settings import Settings
from stagingvm.ssh.errors import SSHAuthError, SSHConnectError, quiet_paramiko
from stagingvm.ssh.known_hosts import (
    KnownHosts,
    bad_key_error,
    changed_key_error,
    host_id,
    load_client_key,
    offered_key,
    trust_pinned,
)

if TYPE_CHECKING:
    import paramiko

SSH_TRANSPORTS = ("ssh", "libssh", "libssh2")
"""libvirt's transports that reach the host over SSH (``qemu+ssh://``, ``qemu+libssh://``)."""

_HOST_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]+\]")
_JUMP_RE = re.compile(
    rf"(?:(?P<user>{USER_RE.pattern})@)?(?P<host>[^@:\s]+|\[[^\]]+\])(?::(?P<port>\d{{1,5}}))?"
)

TRUSTED_KNOWN_HOSTS = (Path("~/.ssh/known_hosts"), Path("/etc/ssh/ssh_known_hosts"))
"""Where a host's first key must already be (OpenSSH's own files: what qemu+ssh checked)."""


@dataclass(frozen=True)
class JumpHost:
    """The libvirt host guests are reached through, and how to log into it."""

    host: str
    port: int
    user: str
    key_path: Path
    known_hosts: Path
    """stagingvm's pins of host keys (``<data_dir>/hosts/known_hosts``)."""
    trusted: tuple[Path, ...] = ()
    """OpenSSH known_hosts files whose key for this host may be pinned on first contact."""

    @property
    def spec(self) -> str:
        """``user@host[:port]`` as OpenSSH's ProxyJump writes it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user}@{host}" + ("" if self.port == 22 else f":{self.port}")


def parse_jump(text: str, *, what: str = "remote.jump") -> tuple[str | None, str, int]:
    """``user@host[:port]`` -> (user or None, host, port); ConfigError when malformed."""
    found = _JUMP_RE.fullmatch(text.strip())
    host = found.group("host").strip("[]") if found else ""
    port = int(found.group("port") or 22) if found else 0
    if found is None or not _HOST_RE.fullmatch(found.group("host")) or not 0 < port < 65536:
        raise ConfigError(
            f"{what}: {text!r} is not user@host or user@host:port",
            hint='e.g. [remote] jump = "ci@vmhost.example.org"',
        )
    return found.group("user"), host, port


def jump_for(settings: Settings, uri: str | None = None) -> JumpHost | None:
    """The host that guests on *uri* (default ``settings.uri``) are reached through; None
    when guests are reached directly (a local URI, or a remote non-SSH one without
    ``remote.jump``)."""
    uri = settings.uri if uri is None else uri
    parts = urlsplit(uri)
    transport = parts.scheme.partition("+")[2]
    query = parse_qs(parts.query)
    if settings.remote.jump:
        user, host, port = parse_jump(settings.remote.jump)
    elif transport in SSH_TRANSPORTS and parts.hostname:
        try:
            port = parts.port or 22
        except ValueError:
            raise ConfigError(f"libvirt URI {uri!r} has a malformed port") from None
        user, host = parts.username, parts.hostname
        if user is not None and not USER_RE.fullmatch(user):
            raise ConfigError(f"libvirt URI {uri!r}: {user!r} is not a valid user name")
        if not _HOST_RE.fullmatch(host if ":" not in host else f"[{host}]"):
            raise ConfigError(f"libvirt URI {uri!r}: {host!r} is not a valid host name")
    else:
        return None
    key: Path | None = settings.remote.key
    if key is None and query.get("keyfile"):
        key = Path(query["keyfile"][-1]).expanduser()
    return JumpHost(
        host=host,
        port=port,
        user=user or getpass.getuser(),
        key_path=key if key is not None else settings.ssh_key_path,
        known_hosts=settings.data_dir / "hosts" / "known_hosts",
        trusted=(settings.remote.known_hosts,)
        if settings.remote.known_hosts is not None
        else tuple(path.expanduser() for path in TRUSTED_KNOWN_HOSTS),
    )


def trusted_key(jump: JumpHost, key: paramiko.PKey) -> bool | None:
    """Does OpenSSH's own known_hosts hold *key* for the host? True: yes; False: it holds a
    different key (a changed key); None: it knows nothing of the host."""
    import paramiko

    name = host_id(jump.host, jump.port)
    verdict: bool | None = None
    for path in jump.trusted:
        try:
            known = paramiko.HostKeys(str(path))
        except (OSError, paramiko.SSHException, ValueError):
            continue
        entry = known.lookup(name)
        if entry is None:
            continue
        found = entry.get(key.get_name())
        if found is not None and found.asbytes() == key.asbytes():
            return True
        verdict = False
    return verdict


def _policy(jump: JumpHost, pinned: KnownHosts) -> paramiko.MissingHostKeyPolicy:
    """Keys not pinned yet: pin the one OpenSSH already trusts, refuse every other."""
    import paramiko

    class FirstKeyFromOpenSSH(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client: Any, hostname: str, key: paramiko.PKey) -> None:
            offered = offered_key(jump.host, jump.port, key)
            already = pinned.keys_for(jump.host, jump.port)
            if already:  # pinned by another process since the client was set up
                if offered in already:
                    return
                raise changed_key_error(pinned.path, offered, already[0])
            known = trusted_key(jump, key)
            if known is True:
                pinned.record(jump.host, jump.port, offered.keytype, offered.blob)
                return
            files = ", ".join(str(path) for path in jump.trusted)
            if known is False:
                raise HostKeyError(
                    f"SSH host key of the libvirt host {offered.host} ({offered.fingerprint}, "
                    f"{offered.keytype}) differs from the one OpenSSH knows for it ({files})",
                    hint="someone may be intercepting the connection; if the host was "
                    "reinstalled, fix your known_hosts with `ssh-keygen -R HOST` and connect "
                    "once with ssh to check the new key",
                )
            raise HostKeyError(
                f"SSH host key of the libvirt host {offered.host} ({offered.fingerprint}, "
                f"{offered.keytype}) is not known: stagingvm pins a host's first key only "
                f"when OpenSSH already trusts it ({files})",
                hint=f"connect once with `ssh -p {jump.port} {jump.user}@{jump.host}` and check "
                "the fingerprint (libvirt's qemu+ssh needs that too)",
            )

    return FirstKeyFromOpenSSH()


class JumpChannelError(SSHConnectError):
    """The libvirt host is reachable but would not open the channel to the guest (its
    port is closed yet, or the host's sshd forbids TCP forwarding)."""


class JumpConnection:
    """One authenticated SSH connection to a libvirt host; :meth:`dial` opens a TCP channel
    from the host to a guest. Thread safe; reconnects once the connection was lost."""

    def __init__(self, jump: JumpHost, *, timeout: float = 10.0) -> None:
        self.jump = jump
        self.timeout = timeout
        self._lock = threading.Lock()
        self._client: paramiko.SSHClient | None = None

    def _connect(self) -> paramiko.SSHClient:
        import paramiko

        quiet_paramiko()
        jump = self.jump
        pkey = load_client_key(jump.key_path)
        pinned = KnownHosts(jump.known_hosts)
        client = paramiko.SSHClient()
        trust_pinned(client, pinned, jump.host, jump.port)
        client.set_missing_host_key_policy(_policy(jump, pinned))
        where = f"the libvirt host {jump.user}@{host_id(jump.host, jump.port)}"
        try:
            client.connect(
                jump.host,
                port=jump.port,
                username=jump.user,
                pkey=pkey,
                timeout=self.timeout,
                banner_timeout=self.timeout,
                auth_timeout=self.timeout,
                channel_timeout=self.timeout,
                allow_agent=False,
                look_for_keys=False,
            )
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise bad_key_error(pinned.path, jump.host, jump.port, exc) from None
        except HostKeyError:
            client.close()
            raise
        except paramiko.AuthenticationException as exc:
            client.close()
            raise SSHAuthError(
                f"{where} refused the key {jump.key_path} ({pkey.fingerprint}): {exc}",
                hint=f"add {jump.key_path}.pub to ~{jump.user}/.ssh/authorized_keys on that "
                "host, or name the key with [remote] key",
            ) from None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            client.close()
            raise SSHConnectError(
                f"SSH to {where} failed: {exc or type(exc).__name__}",
                hint="guests on a remote libvirt host are reached through an SSH connection "
                "to that host: is it up, and does its sshd allow TCP forwarding?",
            ) from None
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(30)
        return client

    def dial(self, host: str, port: int, timeout: float) -> paramiko.Channel:
        """A TCP connection from the libvirt host to *host*:*port*, as a paramiko channel.

        Raises SSHConnectError (or HostKeyError, SSHAuthError) when the host cannot be
        used, JumpChannelError when it refuses the channel."""
        import paramiko

        with self._lock:
            client = self._client
            transport = client.get_transport() if client is not None else None
            if transport is None or not transport.is_active():
                if client is not None:
                    client.close()
                self._client = client = self._connect()
                transport = client.get_transport()
                assert transport is not None
        try:
            return transport.open_channel(
                "direct-tcpip", (host, port), ("127.0.0.1", 0), timeout=timeout
            )
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise JumpChannelError(
                f"the libvirt host {self.jump.host} could not open a connection to "
                f"{host_id(host, port)}: {exc or type(exc).__name__}"
            ) from None

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
