"""The CLI pointed at libvirt's test driver, for the verb tests (``td``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import Result

from stagingvm.settings import Settings
from stagingvm.virt.connection import forget
from stagingvm.vm.manager import Manager
from tests.unit.corehelpers import TESTDRIVER_URI, add_base

Invoke = Callable[..., Result]
__all__ = ["TESTDRIVER_URI", "Driver"]


@dataclass
class Driver:
    """The CLI pointed at a fresh test-driver world with its own data dir."""

    cli: Invoke
    data_dir: Path
    env: dict[str, str]

    def __call__(self, *args: str) -> Result:
        return self.cli(
            ["--uri", TESTDRIVER_URI, "--data-dir", str(self.data_dir), *args], env=self.env
        )

    def with_env(self, env: dict[str, str], *args: str) -> Result:
        """``self(*args)`` with *env* on top of the driver's environment."""
        return self.cli(
            ["--uri", TESTDRIVER_URI, "--data-dir", str(self.data_dir), *args],
            env={**self.env, **env},
        )

    def json(self, *args: str) -> object:
        result = self(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def add_base(self, name: str) -> None:
        """A base as `build --image` leaves it (the test driver cannot take volume uploads)."""
        settings = Settings(
            uri=TESTDRIVER_URI,
            data_dir=self.data_dir,
            storage_pool=Path(self.env["STAGINGVM_STORAGE_POOL"]),
        )
        add_base(Manager(settings), name)  # the CLI's cached connection


@pytest.fixture
def td(cli: Invoke, tmp_path: Path) -> Iterator[Driver]:
    env = {
        "STAGINGVM_ACCEL": "tcg",  # no KVM probing on the test driver
        "STAGINGVM_STORAGE_POOL": str(tmp_path / "pool"),
        "STAGINGVM_SSH_KEY": str(tmp_path / "keys" / "id_ed25519"),
    }
    try:
        yield Driver(cli, tmp_path / "data", env)
    finally:
        forget(TESTDRIVER_URI)


@pytest.fixture
def vm1(td: Driver) -> Driver:
    td.add_base("base1")
    result = td(
        "start",
        "vm1",
        "--base",
        "base1",
        "--no-wait",
        "--pr-ref",
        "pull/42/head",
        "--label",
        "ci run 7",
    )
    assert result.exit_code == 0, result.output
    return td
