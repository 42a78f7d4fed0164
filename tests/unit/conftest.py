"""Fixtures shared by the unit tests: the in-process CLI, and for the libvirt layers one
test-driver connection per test with isolated settings."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from stagingvm.cli.app import PROG, get_app
from stagingvm.config.load import ConfigLocations
from stagingvm.settings import Settings, SSHSettings, Timeouts
from stagingvm.virt import bases
from stagingvm.virt.connection import connect, forget
from stagingvm.vm.manager import Manager
from tests.unit.corehelpers import TESTDRIVER_URI, add_base, make_manager

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
        clean["LIBVIRT_DEFAULT_URI"] = None  # the host's own must not leak into a test
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


@pytest.fixture
def conn() -> Iterator[Any]:
    connection = connect(TESTDRIVER_URI)
    try:
        yield connection
    finally:
        forget(TESTDRIVER_URI)


@pytest.fixture
def routes_file(tmp_path: Path) -> Path:
    """A /proc/net/route of a host with one LAN (10.20.0.0/16) and a default route."""
    path = tmp_path / "route"
    path.write_text(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "eth0\t00000000\t0100140A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        "eth0\t0000140A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
    )
    return path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        uri=TESTDRIVER_URI,
        storage_pool=tmp_path / "pool",
        data_dir=tmp_path / "data",
        ssh=SSHSettings(key=tmp_path / "keys" / "id_ed25519"),
        timeouts=Timeouts(running=1, lease=1, banner=0.5, login=0.5, shutdown=1, tcg_factor=1),
    )


@pytest.fixture
def manager(settings: Settings, conn: Any, routes_file: Path) -> Manager:
    return make_manager(settings, conn, routes_file)


@pytest.fixture
def base(manager: Manager) -> bases.BaseImage:
    return add_base(manager)
