"""The CLI's printing: progress on a terminal only, notes always, data apart from messages."""

from __future__ import annotations

import io
import json
import re

import pytest
from rich.console import Console

from stagingvm.cli.output import Output
from stagingvm.cli.render import age, list_rows, status_lines


def terminal() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, no_color=True, width=100), buffer


def plain(buffer: io.StringIO) -> str:
    """What a terminal shows, roughly: escape sequences removed."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buffer.getvalue())


def test_progress_on_a_terminal_names_each_finished_phase() -> None:
    console, buffer = terminal()
    progress = Output(err=console).progress()
    assert progress.enabled
    with progress.phase("waiting for DHCP lease"):
        with progress.phase("asking the network"):
            pass
        progress.note("KVM is not usable: using TCG")
    text = plain(buffer)
    assert "✓ asking the network (" in text
    assert "✓ waiting for DHCP lease (" in text
    assert "KVM is not usable: using TCG" in text
    assert progress._status is None  # the spinner is gone


def test_failed_phase_gets_no_tick() -> None:
    console, buffer = terminal()
    progress = Output(err=console).progress()
    with pytest.raises(RuntimeError), progress.phase("waiting for SSH banner"):
        raise RuntimeError("guest died")
    assert "✓" not in buffer.getvalue()
    assert progress._status is None


def test_progress_is_silent_off_a_terminal_but_notes_are_not() -> None:
    buffer = io.StringIO()
    progress = Output(err=Console(file=buffer, force_terminal=False)).progress()
    assert not progress.enabled
    with progress.phase("waiting for DHCP lease"):
        progress.note("using TCG")
    assert buffer.getvalue() == "using TCG\n"


def test_verbose_progress_off_a_terminal_is_plain_log_lines() -> None:
    buffer = io.StringIO()
    out = Output(verbose=True, err=Console(file=buffer, force_terminal=False))
    progress = out.progress()
    assert not progress.enabled  # no spinner in a CI log
    with progress.phase("waiting for DHCP lease"):
        progress.note("using TCG")
    lines = buffer.getvalue().splitlines()
    assert lines[:2] == ["... waiting for DHCP lease", "using TCG"]
    assert re.fullmatch(r"done: waiting for DHCP lease \(\d+\.\d s\)", lines[2])
    assert len(lines) == 3


def test_failed_phase_off_a_terminal_has_no_done_line() -> None:
    buffer = io.StringIO()
    progress = Output(verbose=True, err=Console(file=buffer, force_terminal=False)).progress()
    with pytest.raises(RuntimeError), progress.phase("waiting for SSH banner"):
        raise RuntimeError("guest died")
    assert buffer.getvalue() == "... waiting for SSH banner\n"


def test_quiet_silences_progress_and_notes_but_not_errors() -> None:
    console, buffer = terminal()
    out = Output(quiet=True, err=console)
    progress = out.progress()
    assert not progress.enabled
    with progress.phase("waiting"):
        progress.note("a note")
    out.info("an info")
    out.error("it broke [network]")  # markup-like text is printed as is
    assert plain(buffer) == "error: it broke [network]\n"


def test_json_is_one_document_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    Output().json({"b": [1, 2], "a": None})
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"a": None, "b": [1, 2]}
    assert captured.err == ""


def test_age_is_short() -> None:
    import datetime as dt

    now = dt.datetime(2026, 11, 22, 12, 0, 0, tzinfo=dt.UTC)
    assert age("2026-11-22T11:59:58Z", now) == "2s"
    assert age("2026-11-22T11:56:55Z", now) == "3m05s"
    assert age("2026-11-22T09:00:00Z", now) == "3h00m"
    assert age("2026-11-19T10:00:00Z", now) == "3d2h"
    assert age("garbage", now) == "-"
    assert age(None, now) == "-"


def test_list_rows_and_status_lines_come_from_the_json_document() -> None:
    import datetime as dt

    doc = {
        "name": "pr-42",
        "state": "running",
        "ip": None,
        "mac": "52:54:00:00:00:01",
        "memory_mib": 2048,
        "vcpus": 2,
        "created_at": "2026-11-22T11:00:00Z",
        "base": "hermes",
        "disk": {"path": "/p/vm-pr-42.qcow2", "allocation_bytes": 196608},
        "pr_ref": None,
    }
    now = dt.datetime(2026, 11, 22, 12, 0, 0, tzinfo=dt.UTC)
    assert list_rows([doc], now) == [
        ["pr-42", "running", "-", "2", "2048 MiB", "1h00m", "hermes", "-"]
    ]
    lines = status_lines({**doc, "uptime_seconds": 185, "extra": {"k": 1}})
    assert lines[0] == "name:       pr-42"
    assert "IP:         -" in lines
    assert "uptime:     3m05s" in lines
    assert "memory:     2048 MiB" in lines
    assert "disk:       /p/vm-pr-42.qcow2 (192.0 KiB allocated)" in lines
    assert lines[-1] == "extra:      k=1"


def test_guest_text_reaches_the_terminal_shown_not_interpreted() -> None:
    buffer = io.StringIO()
    out = Output(err=Console(file=buffer, force_terminal=True, color_system="standard"))
    out.warn("probe said: \x1b[2J\x1b]0;pwned\x07[bold]x[/bold]\x9b")
    out.detail("last lines", ["\x1b[31mred\x1b[0m"])
    text = buffer.getvalue()
    assert "\x1b[2J" not in text and "\x1b]0;" not in text and "\x9b" not in text
    assert "\\x1b[2J" in text and "\\x1b]0;pwned\\x07" in text and "[bold]x[/bold]" in text
    assert "\\x1b[31mred" in text
