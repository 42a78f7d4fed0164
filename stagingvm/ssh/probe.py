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

MAX_LINE = 255  # RFC 4253: the identification line, CR LF included, is at most 255 bytes
MAX_PRELUDE = 8192  # total bytes we read while looking for it


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


def read_banner(host: str, port: int = 22, timeout: float = 1.0) -> str | None:
    """The server's identification line (``SSH-2.0-OpenSSH_9.2``), or None.

    *timeout* bounds the whole probe (connect and read), not each step.
    """
    found = open_banner(host, port, timeout)
    if found is None:
        return None
    found[1].close()
    return found[0]


def open_banner(host: str, port: int = 22, timeout: float = 1.0) -> tuple[str, ReplaySocket] | None:
    """Like :func:`read_banner`, but keep the connection: (banner, socket) or None.

    The socket replays every byte read so far, the identification line included, so an SSH
    client can start on it as if it had just connected. The caller closes it.
    """
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
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
    return banner, ReplaySocket(sock, received)


def _read_identification(sock: socket.socket, deadline: float) -> tuple[str, bytes] | None:
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
