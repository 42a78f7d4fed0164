"""Undo what a half-done operation created, trying every step even when one fails.

``start`` pushes an undo step for each thing it makes (VM dir, DHCP entry, overlay, definition,
running domain); on failure they run in reverse order. ``destroy`` uses the same runner over its
teardown steps. A failing step is recorded and the rest still run: a broken step must not leave
the others' resources behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


class Undo:
    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable[[], object]]] = []

    def push(self, what: str, step: Callable[[], object]) -> None:
        self._steps.append((what, step))

    def run(self) -> list[str]:
        """Run the steps last-in first-out; return one line per step that failed."""
        failures: list[str] = []
        while self._steps:
            what, step = self._steps.pop()
            try:
                step()
            except Exception as exc:
                log.warning("clean-up step %r failed: %s", what, exc)
                failures.append(f"{what}: {exc}")
        return failures
