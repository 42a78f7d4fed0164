"""Strict logins against a real OpenSSH sshd whose host keys were pinned beforehand.

A Debian image made by stagingvm's builder has three host keys (ssh-keygen -A: ECDSA,
Ed25519, RSA), all recorded in its manifest and all pinned before the VM first runs. The
readiness login must then succeed without recording anything, and fail with HostKeyError
when any key it is shown is not the pinned one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stagingvm.errors import HostKeyError
from stagingvm.vm.hostkeys import seed_known_hosts
from tests.unit.ssh.sshd_server import SSHDaemon, make_host_key, strict_login

KEYTYPES = ("ecdsa", "ed25519", "rsa")  # the builder lists them sorted by file name


def host_keys(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    return [make_host_key(directory / f"ssh_host_{t}_key", t) for t in KEYTYPES]


def public(key: Path) -> str:
    return key.with_name(key.name + ".pub").read_text().strip()


def test_all_recorded_keys_pinned_log_in_and_record_nothing(
    private_sshd: SSHDaemon, tmp_path: Path
) -> None:
    keys = host_keys(tmp_path / "image")
    private_sshd.restart(*keys)
    known_hosts = tmp_path / "vm" / "known_hosts"
    seed_known_hosts(known_hosts, private_sshd.host, [public(k) for k in keys], private_sshd.port)
    before = known_hosts.read_text()
    assert len(before.splitlines()) == 3
    assert strict_login(private_sshd, known_hosts) is True
    assert known_hosts.read_text() == before


def test_one_wrong_recorded_key_is_refused(private_sshd: SSHDaemon, tmp_path: Path) -> None:
    keys = host_keys(tmp_path / "image")
    private_sshd.restart(*keys)
    other = host_keys(tmp_path / "other")
    # The ECDSA key (the type the client asks for first) is not the server's: refused, even
    # though the server's Ed25519 and RSA keys are pinned correctly.
    recorded = [public(other[0]), public(keys[1]), public(keys[2])]
    known_hosts = tmp_path / "vm" / "known_hosts"
    seed_known_hosts(known_hosts, private_sshd.host, recorded, private_sshd.port)
    with pytest.raises(HostKeyError, match="changed"):
        strict_login(private_sshd, known_hosts)
