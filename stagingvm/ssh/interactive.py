"""Wire an SSH channel to the local terminal (the ``ssh NAME`` verb).

With a terminal on both stdin and stdout, the guest gets a PTY of the same size (followed on
SIGWINCH) and the local terminal goes raw, so keys like Ctrl-C and Tab reach the guest's shell;
the terminal is restored however the session ends. Without a terminal (a pipe, CI) there is no
PTY: stdin is forwarded until its end-of-file, and the guest's stdout and stderr stay apart, the
way ``ssh host cmd < file`` behaves.
"""

from __future__ import annotations

import os
import select
import sys
from collections.abc import Callable
from contextlib import ExitStack
from typing import TYPE_CHECKING

from stagingvm.terminal import is_terminal, on_resize, raw_terminal, terminal_size, write_all

if TYPE_CHECKING:
    import paramiko

_CHUNK = 32768


def bridge(
    channel: paramiko.Channel,
    command: str | None,
    *,
    stdin_fd: int | None = None,
    stdout_fd: int | None = None,
    stderr_fd: int | None = None,
    pty: bool | None = None,
    term: str | None = None,
    lost: Callable[[str], Exception],
) -> int:
    """Run *command* (or a login shell) on *channel*, bridged to the given descriptors.

    *pty* None means: a PTY exactly when stdin and stdout are both terminals. Returns the
    remote exit status (-1 if the remote side gave none, e.g. killed by a signal); raises
    ``lost(...)`` if the connection drops.
    """
    in_fd = sys.stdin.fileno() if stdin_fd is None else stdin_fd
    out_fd = sys.stdout.fileno() if stdout_fd is None else stdout_fd
    err_fd = sys.stderr.fileno() if stderr_fd is None else stderr_fd
    use_pty = (is_terminal(in_fd) and is_terminal(out_fd)) if pty is None else pty

    with ExitStack() as stack:
        if use_pty:
            columns, lines = terminal_size(in_fd)
            channel.get_pty(
                term=term or os.environ.get("TERM") or "vt100", width=columns, height=lines
            )
            stack.enter_context(raw_terminal(in_fd))
            stack.enter_context(
                on_resize(lambda c, r: channel.resize_pty(width=c, height=r), in_fd)
            )
        if command is None:
            channel.invoke_shell()
        else:
            channel.exec_command(command)
        try:
            _pump(channel, in_fd, out_fd, err_fd)
        except (OSError, EOFError) as exc:
            raise lost(f"during the session: {exc}") from None
        channel.status_event.wait()
        status = channel.exit_status
    if status == -1:
        transport = channel.get_transport()
        if transport is None or not transport.is_active():
            raise lost("during the session")
    return status


def _pump(channel: paramiko.Channel, in_fd: int, out_fd: int, err_fd: int) -> None:
    """Copy stdin to the channel and the channel to stdout/stderr until the remote ends."""
    stdin_open = True
    while True:
        # Channel.fileno() is a pipe paramiko sets when data, EOF or close arrive.
        watched = [channel.fileno(), in_fd] if stdin_open else [channel.fileno()]
        readable, _, _ = select.select(watched, [], [])
        if channel.fileno() in readable:
            finished = channel.eof_received or channel.closed
            _drain(channel, out_fd, err_fd)
            if finished:  # read before draining: output that came before the EOF is shown
                return
        if stdin_open and in_fd in readable:
            try:
                data = os.read(in_fd, _CHUNK)
            except OSError:  # e.g. EIO: the local terminal went away
                data = b""
            if data:
                channel.sendall(data)
            else:
                stdin_open = False
                channel.shutdown_write()


def _drain(channel: paramiko.Channel, out_fd: int, err_fd: int) -> None:
    while channel.recv_ready():
        write_all(out_fd, channel.recv(_CHUNK))
    while channel.recv_stderr_ready():
        write_all(err_fd, channel.recv_stderr(_CHUNK))
