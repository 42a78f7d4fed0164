"""How library code reports what it is doing, without printing.

The library calls ``progress.phase("waiting for DHCP lease")`` around every wait; the CLI
passes an implementation that shows a Rich spinner on a terminal and nothing otherwise.
Work that moves bytes (an image upload) goes through ``transfer(progress, what, total)``,
which counts bytes on a Progress that can show them (``ByteProgress``, the CLI's) and is a
plain phase on any other.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Protocol, runtime_checkable

Advance = Callable[[int], None]  # called with the bytes done so far


class Progress(Protocol):
    def phase(self, description: str) -> contextlib.AbstractContextManager[None]:
        """Context manager around one phase of work; *description* is shown to people."""
        ...

    def note(self, message: str) -> None:
        """A one-line message for people (a warning, a decision), not data."""
        ...


@runtime_checkable
class ByteProgress(Protocol):
    def transfer(self, description: str, total: int) -> contextlib.AbstractContextManager[Advance]:
        """A phase that moves *total* bytes; the context gives the function to report with."""
        ...


def _ignore(done: int) -> None:
    return None


@contextlib.contextmanager
def transfer(progress: Progress, description: str, total: int) -> Iterator[Advance]:
    """*progress*'s own byte count when it has one, else its plain phase (counts are dropped)."""
    if isinstance(progress, ByteProgress):
        with progress.transfer(description, total) as advance:
            yield advance
        return
    with progress.phase(description):
        yield _ignore


class NullProgress:
    """Reports nothing: the default for library callers and tests."""

    @contextlib.contextmanager
    def phase(self, description: str) -> Iterator[None]:
        yield

    def note(self, message: str) -> None:
        return None


NULL_PROGRESS: Progress = NullProgress()
