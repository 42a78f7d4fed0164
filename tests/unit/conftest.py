"""Fixtures shared by the unit tests."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from stagingvm.cli.app import PROG, get_app
from stagingvm.config import ConfigLocations

Invoke = Callable[..., Result]


@pytest.fixture
def cli(tmp_path: Path) -> Invoke:
    """Run ``pr-test-vm ARGS`` in-process, isolated from the host's config and environment.

    The real /etc/stagingvm and ~/.config are never read: the system file lives in
    *tmp_path* (absent unless a test writes it) and HOME points into *tmp_path*.
    ``result.stdout`` and ``result.stderr`` are kept apart.
    """
    home = tmp_path / "home"
    home.mkdir()
    system_file = tmp_path / "etc-stagingvm-config.toml"
    runner = CliRunner()

    def invoke(
        args: Sequence[str], *, env: dict[str, str] | None = None, input: str | None = None
    ) -> Result:
        clean: dict[str, str | None] = {k: None for k in os.environ if k.startswith("STAGINGVM_")}
        clean.update({"HOME": str(home), "XDG_CONFIG_HOME": None, "NO_COLOR": "1"})
        clean.update(env or {})
        return runner.invoke(
            get_app(),
            list(args),
            env=clean,
            input=input,
            prog_name=PROG,
            obj=ConfigLocations(system_file=system_file),
        )

    return invoke
