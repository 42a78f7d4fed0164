"""Byte progress of uploads: bytes, percent and rate on a terminal; tenths with -v off one.

The work itself (the libvirt stream upload) is real only under a real libvirtd (the test
driver takes no uploads): tests/e2e/test_cli_build_image.py drives it through the CLI.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator

from rich.console import Console

from stagingvm.cli.output import Output, human_size
from stagingvm.progress import NULL_PROGRESS, ByteProgress, transfer
from tests.unit.cli.test_output import plain, terminal

MIB = 1 << 20


def test_a_terminal_shows_a_bar_with_bytes_percent_and_rate_then_a_tick() -> None:
    console, buffer = terminal()
    progress = Output(err=console).progress()
    assert isinstance(progress, ByteProgress)
    with progress.phase("importing disk.qcow2"):  # a spinner runs: it waits for the bar
        with transfer(progress, "uploading disk.qcow2", 12 * MIB) as advance:
            for done in (4 * MIB, 8 * MIB, 12 * MIB):
                advance(done)
        assert progress._status is not None  # the spinner is back
    text = plain(buffer)
    assert "uploading disk.qcow2" in text
    assert "/12.0 MiB" in text  # done/total
    assert "100%" in text
    assert "✓ uploading disk.qcow2 (" in text and ", 12.0 MiB)" in text


def test_verbose_off_a_terminal_logs_each_tenth_once() -> None:
    buffer = io.StringIO()
    progress = Output(verbose=True, err=Console(file=buffer, force_terminal=False)).progress()
    with transfer(progress, "uploading d", 100 * MIB) as advance:
        for done in range(0, 101 * MIB, 4 * MIB):  # 4 MiB chunks, as the upload sends them
            advance(min(done, 100 * MIB))
    lines = buffer.getvalue().splitlines()
    assert lines[0] == "... uploading d (100.0 MiB)"
    percents = [int(line.split(": ")[1].split("%")[0]) for line in lines[1:-1]]
    assert percents == [12, 20, 32, 40, 52, 60, 72, 80, 92]  # one per tenth, none at 100
    assert "MiB of 100.0 MiB" in lines[1] and lines[1].endswith("/s)")
    assert lines[-1].startswith("done: uploading d (") and lines[-1].endswith(", 100.0 MiB)")


def test_quiet_off_a_terminal_without_verbose() -> None:
    buffer = io.StringIO()
    progress = Output(err=Console(file=buffer, force_terminal=False)).progress()
    with transfer(progress, "uploading d", 10 * MIB) as advance:
        advance(5 * MIB)
    assert buffer.getvalue() == ""


def test_a_failed_upload_gets_no_tick() -> None:
    console, buffer = terminal()
    progress = Output(err=console).progress()
    with contextlib.suppress(OSError), transfer(progress, "uploading d", MIB) as advance:
        advance(MIB // 2)
        raise OSError("libvirt stream refused data")
    assert "✓" not in plain(buffer)


class PhasesOnly:
    """A Progress that knows phases but not bytes (as library callers' often do)."""

    def __init__(self) -> None:
        self.phases: list[str] = []

    @contextlib.contextmanager
    def phase(self, description: str) -> Iterator[None]:
        self.phases.append(description)
        yield

    def note(self, message: str) -> None:
        return None


def test_a_progress_without_bytes_gets_a_plain_phase() -> None:
    recorder = PhasesOnly()
    with transfer(recorder, "uploading d", MIB) as advance:
        advance(MIB)
    assert recorder.phases == ["uploading d"]
    with transfer(NULL_PROGRESS, "uploading d", MIB) as advance:
        advance(MIB)


def test_sizes_for_people() -> None:
    assert [human_size(n) for n in (512, 4 * MIB, 1536 * MIB)] == ["512 B", "4.0 MiB", "1.5 GiB"]
