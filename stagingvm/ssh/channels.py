"""One command on one SSH channel: its input, its output, and a signal when it overstays.

Kept apart from :mod:`stagingvm.ssh.client` (the connection and its rules) because these are
the fiddly, paramiko-level parts: reading stdout and stderr without deadlocking on full
windows, end-of-file on stdin, and the SSH ``signal`` request paramiko has no call for.
"""

from __future__ import annotations

import contextlib
import select
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import paramiko

_CHUNK = 32768


def send_signal(channel: paramiko.Channel, name: str) -> None:
    """Ask the server to send signal *name* to the command (RFC 4254, section 6.9).

    Best effort, before a timed-out command's channel is closed: closing alone leaves a
    command that neither reads nor writes running on the guest. Dropbear delivers it;
    OpenSSH's sshd refused it in our test set-up ("session signalling requires privilege
    separation"). paramiko has no call for this request, so the message is built here.
    """
    from paramiko.common import cMSG_CHANNEL_REQUEST
    from paramiko.message import Message

    message = Message()
    message.add_byte(cMSG_CHANNEL_REQUEST)
    message.add_int(channel.remote_chanid)
    message.add_string("signal")
    message.add_boolean(False)  # want_reply: no
    message.add_string(name)
    # If this fails the connection is going anyway; the time-out is what we report.
    with contextlib.suppress(OSError, EOFError, AttributeError):
        channel.get_transport()._send_user_message(message)  # type: ignore[attr-defined]


def feed_stdin(channel: paramiko.Channel, data: bytes | None) -> threading.Thread | None:
    """Send *data* then end-of-file; a thread when there is data, so that a command that
    writes a lot before reading its input cannot deadlock us (both windows full)."""
    if not data:
        channel.shutdown_write()
        return None

    def feed() -> None:
        try:
            channel.sendall(data)
            channel.shutdown_write()
        except (OSError, EOFError):  # the channel was closed: the command is over anyway
            pass

    thread = threading.Thread(target=feed, name="stagingvm-ssh-stdin", daemon=True)
    thread.start()
    return thread


def collect(channel: paramiko.Channel, deadline: float) -> tuple[bytes | None, bytes | None]:
    """Read stdout and stderr until end-of-file and exit status; (None, None) on time-out."""
    stdout = bytearray()
    stderr = bytearray()

    def drain() -> None:
        while channel.recv_ready():
            stdout.extend(channel.recv(_CHUNK))
        while channel.recv_stderr_ready():
            stderr.extend(channel.recv_stderr(_CHUNK))

    while True:
        drain()
        remaining = deadline - time.monotonic()
        if channel.eof_received or channel.closed:
            # All output is in; the exit status follows the end-of-file.
            if not channel.status_event.wait(max(remaining, 0.0)):
                return None, None
            break
        if remaining <= 0:
            return None, None
        # The channel's fileno() is a pipe paramiko sets when data, EOF or close arrive.
        select.select([channel], [], [], remaining)
    drain()
    return bytes(stdout), bytes(stderr)
