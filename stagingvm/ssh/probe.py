"""Is an SSH server answering? Read its identification line, nothing more.

The wait for a booting guest polls this between "has a lease" and "login works": a banner
proves sshd is up without the cost (and the log noise) of a key exchange. A server sends its
``SSH-2.0-...`` line first (RFC 4253, section 4.2); it may send other lines before it, which
are skipped. Anything else (refused, reset, time-out, a different protocol) answers ``None``.

:func:`open_banner` keeps the connection that saw the banner open, so the login can go on over
it at once (:class:`ReplaySocket` hands paramiko the bytes the probe already read): a booting
guest then pays for one TCP connection and one sshd child instead of two, and the key exchange
starts the moment the banner is seen.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any, Protocol

MAX_LINE = 255  # RFC 4253: the identification line, CR LF included, is at most 255 bytes
MAX_PRELUDE = 8192  # total bytes we read while looking for it


class Stream(Protocol):
    """What the probe needs of a connection: a socket, or a paramiko channel."""

    def recv(self, bufsize: int, /) -> bytes: ...
    def settimeout(self, value: float | None, /) -> None: ...
    def close(self) -> None: ...


Dial = Callable[[str, int, float], Any]
"""(host, port, timeout) -> a connected Stream; raises OSError when there is none."""


class ReplayStream:
    """A connected stream (a channel through a libvirt host) whose first ``recv`` calls
    return *replay*; everything else is the stream's own (paramiko uses it as a socket)."""

    def __init__(self, stream: Any, replay: bytes) -> None:
        self._stream = stream
        self._replay = replay

    def recv(self, bufsize: int) -> bytes:
        if self._replay:
            out, self._replay = self._replay[:bufsize], self._replay[bufsize:]
            return out
        data: bytes = self._stream.recv(bufsize)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class ReplaySocket(socket.socket):
    """A connected socket whose first ``recv`` calls return *replay* (bytes already read).

    It takes over the descriptor of the socket it is made from. paramiko reads the server's
    identification line itself, so the bytes a banner probe consumed are given back first.
    """

    def __init__(self, sock: socket.socket, replay: bytes) -> None:
        super().__init__(sock.family, sock.type, sock.proto, fileno=sock.detach())
        self._replay = replay

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if self._replay:
            out, self._replay = self._replay[:bufsize], self._replay[bufsize:]
            return out
        return super().recv(bufsize, flags)


def read_banner(
    host: str, port: int = 22, timeout: float = 1.0, dial: Dial | None = None
) -> str | None:
    """The server's identification line (``SSH-2.0-OpenSSH_9.2``), or None.

    *timeout* bounds the whole probe (connect and read), not each step.
    """
    found = open_banner(host, port, timeout, dial)
    if found is None:
        return None
    found[1].close()
    return found[0]


def open_banner(
    host: str, port: int = 22, timeout: float = 1.0, dial: Dial | None = None
) -> tuple[str, ReplaySocket | ReplayStream] | None:
    """Like :func:`read_banner`, but keep the connection: (banner, socket) or None.

    The socket replays every byte read so far, the identification line included, so an SSH
    client can start on it as if it had just connected. The caller closes it.
    """
    deadline = time.monotonic() + timeout
    sock: Any
    try:
        if dial is None:
            sock = socket.create_connection((host, port), timeout=timeout)
        else:
            sock = dial(host, port, timeout)
    except OSError:  # refused, unreachable, time-out
        return None
    try:
        found = _read_identification(sock, deadline)
    except OSError:  # reset, time-out
        found = None
    if found is None:
        sock.close()
        return None
    banner, received = found
    if isinstance(sock, socket.socket):
        return banner, ReplaySocket(sock, received)
    return banner, ReplayStream(sock, received)


def _read_identification(sock: Stream, deadline: float) -> tuple[str, bytes] | None:
    """The identification line and every byte received (it included), or None."""
    buffer = b""
    received = b""
    while len(received) < MAX_PRELUDE:
        while b"\n" in buffer:
            raw, buffer = buffer.split(b"\n", 1)
            if raw.startswith(b"SSH-"):
                line = _valid_identification(raw)
                return (line, received) if line is not None else None
            if len(raw) > MAX_LINE:
                return None
        if len(buffer) > MAX_LINE:
            return None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        sock.settimeout(remaining)
        chunk = sock.recv(1024)
        if not chunk:
            return None
        received += chunk
        buffer += chunk
    return None


def _valid_identification(raw: bytes) -> str | None:
    line = raw.rstrip(b"\r")
    if len(line) + 2 > MAX_LINE or not line.startswith((b"SSH-2.0-", b"SSH-1.99-")):
        return None
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        return None
    return text if text.isprintable() else None
