"""The local terminal, for the two interactive verbs (``ssh`` shell and serial ``console``).

Both put the user's terminal in raw mode (every key goes to the guest, Ctrl-C included) and
must put it back however they end: an exception, a dropped connection or a signal must never
leave the user with a terminal that does not echo. Everything here is a no-op when the file
descriptor is not a terminal (a pipe in CI, a test), so callers need no special case.
"""

from __future__ import annotations

import os
import signal
import termios
import threading
import tty
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from types import FrameType

DEFAULT_SIZE = (80, 24)


def is_terminal(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


@contextmanager
def raw_terminal(fd: int) -> Iterator[bool]:
    """Put *fd* in raw mode for the duration; yields whether it is a terminal at all.

    The previous mode is restored in ``finally`` with TCSADRAIN, so output already written
    (the guest's last lines) is shown before the local echo comes back.
    """
    if not is_terminal(fd):
        yield False
        return
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd, termios.TCSANOW)
        yield True
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def terminal_size(fd: int) -> tuple[int, int]:
    """(columns, lines) of the terminal on *fd*, or 80x24 when it has none."""
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return DEFAULT_SIZE
    if size.columns <= 0 or size.lines <= 0:
        return DEFAULT_SIZE
    return size.columns, size.lines


@contextmanager
def on_resize(callback: Callable[[int, int], None], fd: int) -> Iterator[None]:
    """Call ``callback(columns, lines)`` whenever the terminal on *fd* is resized (SIGWINCH).

    Signal handlers can only be installed from the main thread; elsewhere (a worker thread,
    a test) resizes are simply not followed. The previous handler is put back on exit.
    """
    if threading.current_thread() is not threading.main_thread() or not is_terminal(fd):
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        # A failed resize must not end the session.
        with suppress(Exception):
            callback(*terminal_size(fd))

    previous = signal.signal(signal.SIGWINCH, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGWINCH, previous)


def write_all(fd: int, data: bytes) -> None:
    """Write all of *data* to *fd* (os.write may write less, e.g. to a pipe or terminal)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
