"""Fixtures for the libvirt core: one test-driver connection per test, isolated settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from corehelpers import TESTDRIVER_URI, add_base, make_manager

from stagingvm.settings import Settings, SSHSettings, Timeouts
from stagingvm.virt import bases
from stagingvm.virt.connection import connect, forget
from stagingvm.vm import Manager


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
