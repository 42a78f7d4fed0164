"""What a terminal shows: `list` at 80 columns never cuts name, state or address, and
``NO_COLOR`` means not one escape sequence (Rich's own no_color still prints bold)."""

from __future__ import annotations

import io

import pytest

from stagingvm.cli import render
from stagingvm.cli.output import Output, fit_columns


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


DOCS = [
    {
        "name": "pr-4242-feature-branch",
        "state": "running",
        "ip": "192.168.150.123",
        "vcpus": 2,
        "memory_mib": 2048,
        "created_at": "2026-01-01T00:00:00+00:00",
        "base": "hermes-nixos-25-05-with-a-long-name",
    },
    {"name": "b", "state": "shut off", "ip": None, "vcpus": 1, "memory_mib": 512, "base": "x"},
]


def terminal(monkeypatch: pytest.MonkeyPatch) -> tuple[Tty, Tty]:
    """stdout and stderr as terminals. Called in the test body: pytest's capture puts its own
    streams back between a fixture's set-up and the test."""
    out, err = Tty(), Tty()
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setattr("sys.stderr", err)
    monkeypatch.delenv("TERM", raising=False)
    return out, err


def test_list_at_80_columns_keeps_name_state_and_ip(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tty = terminal(monkeypatch)
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("NO_COLOR", "1")
    render.print_list(Output(), DOCS)
    text = tty[0].getvalue()
    assert "…" not in text
    assert "192.168.150.123" in text and "running" in text and "shut off" in text
    assert "pr-4242-feature-branch" in text
    assert all(len(line) <= 80 for line in text.splitlines())
    header = text.splitlines()[0].split()
    assert header[:3] == ["NAME", "STATE", "IP"] and "BASE" not in header  # BASE went first


def test_list_of_several_hosts_at_80_columns_keeps_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tty = terminal(monkeypatch)
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("NO_COLOR", "1")
    docs = [
        {**DOCS[0], "host": "qemu+ssh://ci@vmhost-a.example.org:2222/system"},
        {**DOCS[1], "host": "qemu:///system"},
    ]
    render.print_list(Output(), docs, hosts=True)
    text = tty[0].getvalue()
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "…" not in text
    header = text.splitlines()[0].split()
    assert header[:4] == ["NAME", "STATE", "HOST", "IP"]
    assert "vmhost-a.example.org:2222" in text and " local " in text


def test_wide_terminal_shows_every_column(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tty = terminal(monkeypatch)
    monkeypatch.setenv("COLUMNS", "160")
    monkeypatch.setenv("NO_COLOR", "1")
    render.print_list(Output(), DOCS)
    assert tty[0].getvalue().splitlines()[0].split() == list(render.LIST_COLUMNS)


def test_too_narrow_falls_back_to_the_plain_layout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tty = terminal(monkeypatch)
    monkeypatch.setenv("COLUMNS", "30")
    monkeypatch.setenv("NO_COLOR", "1")
    render.print_list(Output(), DOCS)
    text = tty[0].getvalue()
    assert "…" not in text and "─" not in text
    assert "hermes-nixos-25-05-with-a-long-name" in text  # nothing lost


def test_fit_columns_drops_in_order() -> None:
    cols, rows = ("A", "B", "C"), [["aaaa", "bbbb", "cccc"]]
    assert fit_columns(cols, rows, 18, ("C", "B")) == [0, 1, 2]
    assert fit_columns(cols, rows, 17, ("C", "B")) == [0, 1]
    assert fit_columns(cols, rows, 10, ("C", "B")) == [0]
    assert fit_columns(cols, rows, 3, ("C", "B")) is None


def test_no_color_means_no_escape_sequences(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tty = terminal(monkeypatch)
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("NO_COLOR", "1")
    out = Output(verbose=True)
    render.print_list(out, DOCS)
    out.error("it broke")
    out.hint("do this")
    out.warn("careful")
    out.field("phase", "lease")
    with out.progress().phase("waiting for DHCP lease"):
        pass
    stdout, stderr = tty[0].getvalue(), tty[1].getvalue()
    assert "\x1b" not in stdout and "\x1b" not in stderr
    assert "error: it broke" in stderr and "hint: do this" in stderr
    assert "waiting for DHCP lease" in stderr


def test_colour_on_a_terminal_without_no_color(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tty = terminal(monkeypatch)
    monkeypatch.delenv("NO_COLOR", raising=False)
    Output().error("it broke")
    assert "\x1b[" in tty[1].getvalue()  # the check above would notice escapes
