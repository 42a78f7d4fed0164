"""How library code reports what it is doing, without printing.

The library calls ``progress.phase("waiting for DHCP lease")`` around every wait; the CLI
passes an implementation that shows a Rich spinner on a terminal and nothing otherwise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol


class Progress(Protocol):
    def phase(self, description: str) -> contextlib.AbstractContextManager[None]:
        """Context manager around one phase of work; *description* is shown to people."""
        ...

    def note(self, message: str) -> None:
        """A one-line message for people (a warning, a decision), not data."""
        ...


class NullProgress:
    """Reports nothing: the default for library callers and tests."""

    @contextlib.contextmanager
    def phase(self, description: str) -> Iterator[None]:
        yield

    def note(self, message: str) -> None:
        return None


NULL_PROGRESS: Progress = NullProgress()
