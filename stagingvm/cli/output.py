"""Everything the CLI prints goes through here.

Two streams with two jobs: **stdout carries data** (tables, JSON, a base name, a console
log) so it can be piped; **stderr carries messages** for people (errors, hints, warnings,
progress). ``--json`` prints exactly one JSON document on stdout and nothing else there.

Rich is imported only when something is actually printed on stderr or a table is drawn,
so ``pr-test-vm --help`` and ``list --json`` never pay for it. Colour only on a terminal and
never with ``NO_COLOR`` set (https://no-color.org).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from stagingvm.escaping import term

if TYPE_CHECKING:
    from rich.console import Console
    from rich.status import Status


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def colour_wanted(stream: Any) -> bool:
    return _is_tty(stream) and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


class Output:
    """Printing for one CLI invocation. *quiet* silences info messages and progress;
    *verbose* logs progress phases as plain lines where no spinner can show (CI logs)."""

    def __init__(
        self, *, quiet: bool = False, verbose: bool = False, err: Console | None = None
    ) -> None:
        """*err*: a console for messages; made on first use on sys.stderr when None."""
        self.quiet = quiet
        self.verbose = verbose
        self._err = err
        self._given_err = err is not None  # a console the caller set up: used as it is

    # -- stderr: messages for people --------------------------------------------------------
    @property
    def err(self) -> Console:
        """The Rich console on stderr, made on first use (sys.stderr looked up then)."""
        if self._err is None:
            from rich.console import Console

            colour = colour_wanted(sys.stderr)
            self._err = Console(
                stderr=True,
                highlight=False,
                no_color=not colour,
                color_system="auto" if colour else None,  # None: no bold, no escapes at all
                force_terminal=colour or None,
                soft_wrap=True,  # never break a message in the middle: people grep logs
            )
        return self._err

    def _plain(self) -> bool:
        """Messages go out as plain text, without Rich: nothing to style, and no console was
        made or given (importing Rich costs more CPU than a whole ``list``)."""
        return self._err is None and not colour_wanted(sys.stderr)

    def _line(self, label: str, style: str, message: str) -> None:
        # Control characters and escape sequences (a guest's output) are shown, never
        # interpreted; with Rich, as Text, not markup: messages hold user input such as "[a]".
        self._emit(label, style, term(message, keep_newlines=True))

    def _emit(self, label: str, style: str, text: str) -> None:
        """*label* (in *style*) and *text*, already made safe by ``term``, as one line."""
        if self._plain():
            sys.stderr.write(f"{label}{text}\n")
            sys.stderr.flush()
            return
        from rich.text import Text

        self.err.print(Text.assemble((label, style), text))

    def error(self, message: str) -> None:
        self._line("error: ", "bold red", message)

    def hint(self, message: str) -> None:
        self._line("hint: ", "cyan", message)

    def warn(self, message: str) -> None:
        self._line("warning: ", "yellow", message)

    def info(self, message: str, *, always: bool = False) -> None:
        """A message people want when things go well; silenced by ``--quiet`` unless *always*."""
        if always or not self.quiet:
            self._line("", "", message)

    def field(self, label: str, value: str) -> None:
        """One indented "label: value" line under an error."""
        self._line(f"  {label}: ", "bold", value)

    def detail(self, label: str, lines: Sequence[str]) -> None:
        """An indented block under an error, such as the last console lines."""
        self._emit(f"  {label}:", "bold", "")
        for line in lines:
            self._emit(f"    | {term(line)}", "", "")

    # -- stdout: data ------------------------------------------------------------------------
    def data(self, text: str) -> None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()

    def json(self, document: Any) -> None:
        """Exactly one JSON document on stdout."""
        self.data(json.dumps(document, indent=2, sort_keys=True, default=str))

    def table(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[str]],
        *,
        right: Sequence[str] = (),
        droppable: Sequence[str] = (),
    ) -> None:
        """A table on stdout: Rich on a terminal; plain aligned columns when piped.

        Piped output has no box characters and no trailing blanks, so `grep`, `awk` and
        `column` work on it, and Rich is not imported at all. No cell is ever cut: on a
        narrow terminal the *droppable* columns go first, in that order; if the rest still
        does not fit, the plain layout is printed (long lines wrap, nothing is lost).
        """
        if _is_tty(sys.stdout):
            keep = fit_columns(columns, rows, terminal_width(), droppable)
            if keep is None:
                self._plain_table(columns, rows, right)
                return
            columns = [columns[i] for i in keep]
            rows = [[row[i] for i in keep] for row in rows]
            from rich import box
            from rich.table import Table

            table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
            for column in columns:
                table.add_column(
                    column, no_wrap=True, justify="right" if column in right else "left"
                )
            for row in rows:
                table.add_row(*row)
            self.stdout_console().print(table)
            return
        self._plain_table(columns, rows, right)

    def _plain_table(
        self, columns: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[str]
    ) -> None:
        widths = [max(len(str(cell)) for cell in col) for col in zip(columns, *rows, strict=True)]
        lines = []
        for row in [list(columns), *rows]:
            cells = [
                str(cell).rjust(width) if column in right else str(cell).ljust(width)
                for column, cell, width in zip(columns, row, widths, strict=True)
            ]
            lines.append("   ".join(cells).rstrip())
        self.data("\n".join(lines))

    def stdout_console(self) -> Console:
        """A Rich console on stdout for tables (plain text when piped)."""
        from rich.console import Console

        colour = colour_wanted(sys.stdout)
        return Console(
            highlight=False,
            no_color=not colour,
            color_system="auto" if colour else None,
            force_terminal=colour or None,
            # Piped: a fixed, wide layout so columns are not squeezed or wrapped.
            width=None if _is_tty(sys.stdout) else 200,
        )

    def progress(self) -> CliProgress:
        # Not self.err.is_terminal: that would import Rich for every `list --json`.
        terminal = self._err.is_terminal if self._err is not None else _is_tty(sys.stderr)
        # A spinner redraws the line with cursor escapes: not under NO_COLOR/TERM=dumb, where
        # phases are plain lines instead (as with --verbose off a terminal).
        animated = terminal and (self._given_err or colour_wanted(sys.stderr))
        return CliProgress(
            self,
            enabled=not self.quiet and animated,
            log=(self.verbose or terminal) and not self.quiet,
        )


def human_size(n: float) -> str:
    """*n* bytes for people: ``512 B``, ``4.0 MiB``, ``1.2 GiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


TABLE_GAP = 3  # what Rich's SIMPLE_HEAD box puts between two columns (pad, rule, pad)


def terminal_width() -> int:
    """Columns of the terminal on stdout (``COLUMNS`` wins, as Rich reads it); 80 if unknown."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return 80


def fit_columns(
    columns: Sequence[str], rows: Sequence[Sequence[str]], width: int, droppable: Sequence[str]
) -> list[int] | None:
    """Indices of the columns to draw so that no cell is cut at *width*, dropping the
    *droppable* columns in that order; None when even the rest does not fit."""
    widths = [max(len(str(c)) for c in col) for col in zip(columns, *rows, strict=True)]
    keep = list(range(len(columns)))
    to_drop = [columns.index(name) for name in droppable if name in columns]
    while True:
        needed = sum(widths[i] for i in keep) + TABLE_GAP * (len(keep) - 1)
        if needed <= width:
            return keep
        if not to_drop:
            return None
        keep.remove(to_drop.pop(0))


class CliProgress:
    """``stagingvm.progress.Progress`` for the CLI: a spinner naming the phase on a terminal.

    Not on a terminal (CI logs, pipes) phases are silent, unless ``--verbose``: then each is a
    plain line when it starts and one with its duration when it ends, so a long job's log shows
    where it is. Notes (warnings, decisions such as "KVM is not usable, using TCG") are always
    shown. ``--quiet``: none of it.
    """

    def __init__(self, out: Output, *, enabled: bool, log: bool = False) -> None:
        self._out = out
        self.enabled = enabled
        self.log = log and not enabled
        self._stack: list[str] = []
        self._status: Status | None = None

    @contextlib.contextmanager
    def phase(self, description: str) -> Iterator[None]:
        if not self.enabled:
            if not self.log:
                yield
                return
            self._out._line("", "", f"... {description}")
            started = time.monotonic()
            yield  # on failure the error says what went wrong: no second line
            self._out._line("", "", f"done: {description} ({time.monotonic() - started:.1f} s)")
            return
        self._stack.append(description)
        if self._status is None:
            self._status = self._out.err.status(description, spinner="dots")
            self._status.start()
        else:
            self._status.update(description)
        started = time.monotonic()
        ok = False
        try:
            yield
            ok = True
        finally:
            self._stack.pop()
            if self._stack:
                self._status.update(self._stack[-1])
            else:
                self._status.stop()
                self._status = None
            if ok:
                self._done(description, time.monotonic() - started)

    @contextlib.contextmanager
    def transfer(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        """A phase that moves *total* bytes: a bar with bytes, percent and rate on a terminal;
        off one (with ``--verbose``) a line at each tenth; else nothing. The context gives
        the function the work calls with the bytes done so far."""
        if not self.enabled:
            with self._transfer_lines(description, total) as advance:
                yield advance
            return
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as Bar

        paused = self._status  # one live display at a time: the spinner waits meanwhile
        if paused is not None:
            paused.stop()
        bar = Bar(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TaskProgressColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self._out.err,
            transient=True,
        )
        task = bar.add_task(term(description), total=total)
        started = time.monotonic()
        try:
            with bar:
                yield lambda done: bar.update(task, completed=done)
        finally:
            if paused is not None:
                paused.start()
        self._done(description, time.monotonic() - started, f", {human_size(total)}")

    @contextlib.contextmanager
    def _transfer_lines(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        if not self.log:
            yield lambda done: None
            return
        self._out._line("", "", f"... {description} ({human_size(total)})")
        started = time.monotonic()
        next_tenth = 1

        def advance(done: int) -> None:
            nonlocal next_tenth
            if total <= 0 or done * 10 < next_tenth * total or done >= total:
                return
            rate = done / max(time.monotonic() - started, 1e-6)
            self._out._line(
                "",
                "",
                f"    {description}: {done * 100 // total}% ({human_size(done)} of "
                f"{human_size(total)}, {human_size(rate)}/s)",
            )
            next_tenth = done * 10 // total + 1

        yield advance
        elapsed = time.monotonic() - started
        self._out._line("", "", f"done: {description} ({elapsed:.1f} s, {human_size(total)})")

    def _done(self, description: str, elapsed: float, extra: str = "") -> None:
        from rich.text import Text

        self._out.err.print(
            Text.assemble(("✓ ", "green"), description, (f" ({elapsed:.1f} s{extra})", "dim"))
        )

    def note(self, message: str) -> None:
        if not self._out.quiet:
            self._out._line("", "", message)
