"""Phased waits: each phase has its own time-out, and all give up at once if the guest dies.

A start waits for: the domain running -> a DHCP lease -> the SSH banner -> an SSH login that
works. Each phase polls a check (a callable returning a result, or None for "not yet") at a
short interval until it answers or its time-out passes. Before every poll the runner asks
whether the guest is still alive, so a guest that crashes or powers off fails the wait within
one interval instead of after minutes. A failure names the phase, the time spent in it and the
last lines of the serial console, which usually say why.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from stagingvm.errors import GuestFailedError, WaitTimeoutError
from stagingvm.progress import NULL_PROGRESS, Progress

T = TypeVar("T")

CONSOLE_LINES = 30


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    """The real clock: ``time.monotonic`` (immune to wall-clock jumps) and ``time.sleep``."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class Phase(Generic[T]):
    """One phase: *check* returns the result when done, None while not yet."""

    name: str
    timeout: float
    check: Callable[[], T | None]
    interval: float = 0.5
    hint: str | None = None


class PhaseRunner:
    """Runs phases against one guest.

    *guest_gone* returns None while the guest lives, else why it is gone ("shut off");
    *console_tail* returns the last console lines for error reports.
    """

    def __init__(
        self,
        *,
        guest_gone: Callable[[], str | None],
        console_tail: Callable[[int], list[str]],
        clock: Clock | None = None,
        progress: Progress = NULL_PROGRESS,
    ) -> None:
        self._guest_gone = guest_gone
        self._console_tail = console_tail
        self._clock = clock or MonotonicClock()
        self._progress = progress

    def run(self, phase: Phase[T]) -> T:
        clock = self._clock
        start = clock.now()
        deadline = start + phase.timeout
        with self._progress.phase(f"waiting for {phase.name}"):
            while True:
                gone = self._guest_gone()
                if gone is not None:
                    elapsed = clock.now() - start
                    raise GuestFailedError(
                        f"the guest {gone} while waiting for {phase.name} (after {elapsed:.1f} s)",
                        phase=phase.name,
                        elapsed=elapsed,
                        console_tail=self._console_tail(CONSOLE_LINES),
                        hint="the console lines above usually say why; "
                        "`--keep-on-failure` keeps the VM for a look",
                    )
                result = phase.check()
                if result is not None:
                    return result
                now = clock.now()
                if now >= deadline:
                    raise WaitTimeoutError(
                        f"timed out after {now - start:.1f} s waiting for {phase.name}",
                        phase=phase.name,
                        elapsed=now - start,
                        console_tail=self._console_tail(CONSOLE_LINES),
                        hint=phase.hint,
                    )
                clock.sleep(min(phase.interval, deadline - now))
