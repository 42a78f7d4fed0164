"""Stop signals for the CLI: SIGINT and SIGTERM interrupt a command once, cleanly.

Why: a CI job that is cancelled gets SIGTERM, whose default action kills the process on the
spot, leaking whatever a ``start`` or ``test`` had made. Turned into ``KeyboardInterrupt``
it takes the Ctrl-C path instead: the library cleans up, the CLI exits 130. A second signal
while that clean-up runs only says so, instead of cutting it short.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType


@contextlib.contextmanager
def interrupt_once() -> Iterator[None]:
    """While the block runs, the first SIGINT/SIGTERM raises KeyboardInterrupt(SIGNAME).

    SIGINT gets this handler even if the process started with it ignored (as background CI
    steps often do). Outside the main thread (where signals cannot be handled) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = False

    def handler(signum: int, _frame: FrameType | None) -> None:
        nonlocal fired
        name = signal.Signals(signum).name
        if not fired:
            fired = True
            raise KeyboardInterrupt(name)
        sys.stderr.write(f"{name}: cleaning up, please wait\n")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
