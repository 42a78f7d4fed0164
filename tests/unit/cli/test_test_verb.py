"""``pr-test-vm test`` input checks (before anything is built or created) and ``setup``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

Invoke = Callable[..., Result]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "STAGINGVM_URI": "test:///default",
        "STAGINGVM_DATA_DIR": str(tmp_path / "data"),
        "STAGINGVM_STORAGE_POOL": str(tmp_path / "pool"),
    }


def test_needs_exactly_one_of_target_and_image(
    cli: Invoke, env: dict[str, str], tmp_path: Path
) -> None:
    image = tmp_path / "disk.qcow2"
    image.write_bytes(b"x")
    neither = cli(["test"], env=env)
    both = cli(["test", ".#x", "--image", str(image)], env=env)
    image_and_recipe = cli(["test", "--image", str(image), "--recipe", "tiny"], env=env)
    for result in (neither, both, image_and_recipe):
        assert result.exit_code == 2
        assert "exactly one of a TARGET to build, --image or --recipe" in result.stderr
    unknown_recipe = cli(["test", "--recipe", "no-such-recipe"], env=env)
    assert unknown_recipe.exit_code == 3
    assert "no image recipe named 'no-such-recipe'" in unknown_recipe.stderr
    assert not (tmp_path / "data").exists()


def test_missing_image_is_not_found(cli: Invoke, env: dict[str, str], tmp_path: Path) -> None:
    result = cli(["test", "--image", str(tmp_path / "nope.qcow2")], env=env)
    assert result.exit_code == 3


def test_bad_policy_fails_before_any_build(
    cli: Invoke, env: dict[str, str], tmp_path: Path
) -> None:
    result = cli(["test", "/nonexistent#x", "--policy", "builtin:no-such-policy"], env=env)
    assert result.exit_code == 2
    assert "no-such-policy" in result.stderr
    assert not (tmp_path / "data" / "logs").exists()  # nix never ran


def test_bad_nix_option_is_a_usage_error(cli: Invoke, env: dict[str, str], tmp_path: Path) -> None:
    image = tmp_path / "disk.qcow2"
    image.write_bytes(b"x")
    result = cli(["test", "--image", str(image), "--nix-option", "no-equals-sign"], env=env)
    assert result.exit_code == 2
    assert "KEY=VALUE" in result.stderr


def test_bad_vm_name_is_refused(cli: Invoke, env: dict[str, str], tmp_path: Path) -> None:
    image = tmp_path / "disk.qcow2"
    image.write_bytes(b"x")
    result = cli(["test", "--image", str(image), "--name", "../etc"], env=env)
    assert result.exit_code == 2


def test_setup_defines_network_and_pool_and_is_idempotent(cli: Invoke, env: dict[str, str]) -> None:
    first = cli(["setup", "--json"], env=env)
    assert first.exit_code == 0, first.stderr
    doc = json.loads(first.stdout)
    assert doc["network"] == "staging" and doc["pool"] == "staging"
    assert doc["subnet"] == "192.168.150.0/24" and doc["drift"] == []
    second = cli(["setup"], env=env)
    assert second.exit_code == 0, second.stderr
    assert "are ready" in second.stderr and second.stdout == ""


def test_hostile_input_files_are_clean_bad_input(
    cli: Invoke, env: dict[str, str], tmp_path: Path
) -> None:
    """/dev/zero, a FIFO, a nesting bomb: exit 2 each, never a hang, a MemoryError or a trace."""
    import os

    image = tmp_path / "disk.qcow2"
    image.write_bytes(b"x")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    bomb = tmp_path / "bomb.toml"
    bomb.write_text("a = " + "[" * 3000 + "]" * 3000 + "\n")
    base = ["test", "--image", str(image), "--name", "t1"]
    cases = [
        cli([*base, "--policy", "/dev/zero"], env=env),
        cli([*base, "--policy", str(fifo)], env=env),
        cli([*base, "--policy", str(bomb)], env=env),
        cli(["--config", "/dev/zero", *base], env=env),
        cli(base, env={**env, "STAGINGVM_CONFIG": str(fifo)}),
        cli(["test", "--image", str(image)], env={**env, "GITHUB_EVENT_PATH": "/dev/zero"}),
    ]
    for result in cases:
        assert result.exit_code == 2, result.stderr
        assert "Traceback" not in result.stderr
    assert "not a regular file" in cases[0].stderr
    assert "nests" in cases[2].stderr
    assert not (tmp_path / "data").exists()


def test_report_paths_are_checked_before_anything_starts(
    cli: Invoke, env: dict[str, str], tmp_path: Path
) -> None:
    image = tmp_path / "disk.qcow2"
    image.write_bytes(b"x")
    for option, path in (
        ("--junit", tmp_path / "no" / "dir" / "x.xml"),
        ("--markdown", tmp_path),
        ("--report-json", tmp_path / "no" / "r.json"),
    ):
        result = cli(["test", "--image", str(image), "--name", "t1", option, str(path)], env=env)
        assert result.exit_code == 2, result.stderr
        assert option in result.stderr
    assert not (tmp_path / "no").exists() and not (tmp_path / "data").exists()
