"""Bounded reads: caps, regular files only, nesting limits, report paths checked early."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stagingvm.boundedread import check_output_path, parse_json, parse_toml, read_bounded
from stagingvm.errors import InvalidInputError


def test_reads_a_small_file(tmp_path: Path) -> None:
    f = tmp_path / "a.toml"
    f.write_text("x = 1\n")
    assert read_bounded(f, 100, "config file") == "x = 1\n"


def test_over_the_cap_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "big.toml"
    f.write_bytes(b"#" * 101)
    with pytest.raises(InvalidInputError, match="larger than 100 bytes"):
        read_bounded(f, 100, "config file")
    f.write_bytes(b"#" * 100)
    assert len(read_bounded(f, 100, "config file")) == 100


def test_dev_zero_is_not_a_regular_file() -> None:
    with pytest.raises(InvalidInputError, match="not a regular file") as info:
        read_bounded(Path("/dev/zero"), 1024, "policy file")
    assert info.value.exit_code == 2


def test_a_fifo_without_writer_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(InvalidInputError, match="not a regular file"):
        read_bounded(fifo, 1024, "event file")


def test_a_directory_and_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="not a regular file"):
        read_bounded(tmp_path, 1024, "config file")
    with pytest.raises(InvalidInputError, match="cannot read"):
        read_bounded(tmp_path / "nope", 1024, "config file")


def test_not_utf8(tmp_path: Path) -> None:
    f = tmp_path / "bin"
    f.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InvalidInputError, match="not UTF-8"):
        read_bounded(f, 1024, "config file")


def test_deep_toml_and_json_are_bad_input_not_recursion_errors() -> None:
    with pytest.raises(InvalidInputError, match="nests"):
        parse_toml("a = " + "[" * 5000 + "]" * 5000, "policy")
    with pytest.raises(InvalidInputError, match="nests"):
        parse_toml("a = " + "[" * 100 + "]" * 100, "policy")
    with pytest.raises(InvalidInputError, match="nests"):
        parse_json("[" * 100000 + "]" * 100000, "event file")
    assert parse_toml("a = [[1], [2]]\n[b.c]\nd = 1\n", "policy") == {
        "a": [[1], [2]],
        "b": {"c": {"d": 1}},
    }


def test_report_paths(tmp_path: Path) -> None:
    check_output_path(tmp_path / "report.xml", "JUnit")
    with pytest.raises(InvalidInputError, match="does not exist"):
        check_output_path(tmp_path / "no" / "dir" / "x.xml", "JUnit")
    assert not (tmp_path / "no").exists()
    with pytest.raises(InvalidInputError, match="is a directory"):
        check_output_path(tmp_path, "Markdown")
