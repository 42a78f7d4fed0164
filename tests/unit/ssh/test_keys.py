"""stagingvm's client keys: made once, 0600 from the start, loadable by paramiko and OpenSSH."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import paramiko
import pytest

from stagingvm.errors import InvalidInputError
from stagingvm.ssh.keys import ensure_client_key, load_public_line, make_user_keypair


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_key_is_ed25519_private_and_reused(tmp_path: Path) -> None:
    key = tmp_path / "data" / "keys" / "id_ed25519"
    line = ensure_client_key(key)
    assert line.startswith("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5")
    assert line.split()[2].startswith("stagingvm@")
    assert mode(key) == 0o600
    assert mode(key.parent) == 0o700
    assert key.read_bytes().startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    assert (tmp_path / "data" / "keys" / "id_ed25519.pub").read_text() == line + "\n"
    # A second call loads the same key instead of making another.
    assert ensure_client_key(key) == line
    assert load_public_line(key) == line
    # paramiko can use it, and its public half is the line we hand to guests.
    pkey = paramiko.PKey.from_path(key)
    assert pkey.get_name() == "ssh-ed25519"
    assert line.split()[1] == pkey.get_base64()


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen not installed")
def test_openssh_reads_the_key(tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    line = ensure_client_key(key)
    derived = subprocess.run(
        ["ssh-keygen", "-y", "-f", str(key)], check=True, capture_output=True, text=True
    ).stdout
    assert derived.split()[:2] == line.split()[:2]


def test_key_is_private_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        key = tmp_path / "fresh" / "id_ed25519"
        ensure_client_key(key)
    finally:
        os.umask(old)
    assert mode(key) == 0o600
    assert mode(key.parent) == 0o700
    # No temporary file is left behind.
    assert sorted(p.name for p in key.parent.iterdir()) == ["id_ed25519", "id_ed25519.pub"]


@pytest.mark.parametrize("loose", [0o640, 0o604, 0o660, 0o644])
def test_loose_permissions_are_refused(tmp_path: Path, loose: int) -> None:
    key = tmp_path / "id_ed25519"
    ensure_client_key(key)
    os.chmod(key, loose)
    with pytest.raises(InvalidInputError) as info:
        ensure_client_key(key)
    assert info.value.hint == f"chmod 600 {key}"
    assert f"{loose:04o}" in str(info.value)


def test_garbage_key_file_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    key.write_bytes(b"not a key\n")
    os.chmod(key, 0o600)
    with pytest.raises(InvalidInputError, match="not an OpenSSH private key"):
        ensure_client_key(key)


def test_existing_public_file_of_a_users_key_is_not_rewritten(tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    ensure_client_key(key)
    pub = tmp_path / "id_ed25519.pub"
    pub.write_text("ssh-ed25519 AAAA my own comment\n")
    ensure_client_key(key)
    assert pub.read_text() == "ssh-ed25519 AAAA my own comment\n"


def test_user_keypairs_are_separate(tmp_path: Path) -> None:
    client = ensure_client_key(tmp_path / "id_ed25519")
    worker = make_user_keypair(tmp_path, "ai-worker")
    assert worker.private_path == tmp_path / "id_ed25519_ai-worker"
    assert mode(worker.private_path) == 0o600
    assert worker.public_line.split()[1] != client.split()[1]
    assert make_user_keypair(tmp_path, "ai-worker") == worker


@pytest.mark.parametrize("name", ["", "../root", "Root", "a b", "x" * 33, "-rf", "ai\nworker"])
def test_hostile_user_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidInputError):
        make_user_keypair(tmp_path, name)
    assert list(tmp_path.iterdir()) == []


def _make(path: str) -> str:
    return ensure_client_key(Path(path))


def test_concurrent_creation_yields_one_key(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "id_ed25519"
    with ProcessPoolExecutor(max_workers=4) as pool:
        lines = list(pool.map(_make, [str(key)] * 8))
    assert len({line.split()[1] for line in lines}) == 1
    assert lines[0] == ensure_client_key(key)
