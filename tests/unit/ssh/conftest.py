"""Fixtures: real OpenSSH and Dropbear daemons for the SSH adapter's tests (see sshd_server.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.ssh.sshd_server import (
    DropbearDaemon,
    SSHDaemon,
    require_dropbear,
    require_sshd,
    start_daemon,
)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHDaemon]:
    """One sshd shared by a test module (tests must not change its host key)."""
    require_sshd()
    daemon = start_daemon(tmp_path_factory.mktemp("sshd"))
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def private_sshd(tmp_path: Path) -> Iterator[SSHDaemon]:
    """An sshd of the test's own, which it may restart with another host key."""
    require_sshd()
    daemon = start_daemon(tmp_path / "sshd")
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def dropbear(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DropbearDaemon]:
    """Dropbear (the tiny guest's SSH server), shared by a test module."""
    require_dropbear()
    directory = tmp_path_factory.mktemp("dropbear")
    daemon = DropbearDaemon(directory, directory / "keys" / "id_ed25519")
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()
