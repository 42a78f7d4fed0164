"""Is an SSH server answering? Read its identification line, nothing more.

The wait for a booting guest polls this between "has a lease" and "login works": a banner
proves sshd is up without the cost (and the log noise) of a key exchange. A server sends its
``SSH-2.0-...`` line first (RFC 4253, section 4.2); it may send other lines before it, which
are skipped. Anything else (refused, reset, time-out, a different protocol) answers ``None``.
"""

from __future__ import annotations

import socket
import time

MAX_LINE = 255  # RFC 4253: the identification line, CR LF included, is at most 255 bytes
MAX_PRELUDE = 8192  # total bytes we read while looking for it


def read_banner(host: str, port: int = 22, timeout: float = 1.0) -> str | None:
    """The server's identification line (``SSH-2.0-OpenSSH_9.2``), or None.

    *timeout* bounds the whole probe (connect and read), not each step.
    """
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            return _read_identification(sock, deadline)
    except OSError:  # refused, unreachable, reset, time-out
        return None


def _read_identification(sock: socket.socket, deadline: float) -> str | None:
    buffer = b""
    received = 0
    while received < MAX_PRELUDE:
        while b"\n" in buffer:
            raw, buffer = buffer.split(b"\n", 1)
            if raw.startswith(b"SSH-"):
                return _valid_identification(raw)
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
        received += len(chunk)
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
