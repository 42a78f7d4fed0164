"""Host-key pinning against a real sshd: first key only when fresh, any change is an error."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from stagingvm.errors import HostKeyError
from stagingvm.ssh.client import GuestSSH
from stagingvm.ssh.known_hosts import KnownHosts, fingerprint, host_id
from tests.unit.ssh.sshd_server import SSH_KEYGEN, SSHDaemon, connect_to, make_host_key


def connect(daemon: SSHDaemon, known_hosts: Path, *, fresh: bool) -> GuestSSH:
    return connect_to(daemon, fresh=fresh, known_hosts=known_hosts)


def keygen_fingerprint(public_key: Path) -> str:
    out = subprocess.run(
        [SSH_KEYGEN, "-l", "-E", "sha256", "-f", str(public_key)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.split()[1]


def test_first_key_is_recorded_when_fresh(private_sshd: SSHDaemon, tmp_path: Path) -> None:
    known_hosts = tmp_path / "vms" / "vm1" / "known_hosts"
    with connect(private_sshd, known_hosts, fresh=True) as ssh:
        assert ssh.run(["true"], timeout=10).exit_status == 0
    entries = KnownHosts(known_hosts).entries()
    assert len(entries) == 1
    assert entries[0].host == f"[127.0.0.1]:{private_sshd.port}"
    assert entries[0].keytype == "ssh-ed25519"
    host_pub = private_sshd.directory / "host_key_a.pub"
    assert entries[0].blob == host_pub.read_text().split()[1]
    assert entries[0].fingerprint == keygen_fingerprint(host_pub)
    assert stat.S_IMODE(known_hosts.stat().st_mode) == 0o600
    # Later connections (not fresh) are verified against the pinned key and succeed.
    with connect(private_sshd, known_hosts, fresh=False) as ssh:
        assert ssh.run(["echo", "ok"], timeout=10).stdout == b"ok\n"


def test_unknown_key_without_fresh_start_is_refused(
    private_sshd: SSHDaemon, tmp_path: Path
) -> None:
    known_hosts = tmp_path / "vms" / "vm2" / "known_hosts"
    with pytest.raises(HostKeyError) as info:
        connect(private_sshd, known_hosts, fresh=False)
    fp = keygen_fingerprint(private_sshd.directory / "host_key_a.pub")
    assert fp in str(info.value)
    assert info.value.exit_code == 8
    assert info.value.hint is not None and "pr-test-vm rebuild vm2" in info.value.hint
    assert KnownHosts(known_hosts).entries() == []


def test_changed_host_key_is_refused_with_both_fingerprints(
    private_sshd: SSHDaemon, tmp_path: Path
) -> None:
    known_hosts = tmp_path / "vms" / "vm3" / "known_hosts"
    connect(private_sshd, known_hosts, fresh=True).close()
    pinned = known_hosts.read_bytes()
    new_key = make_host_key(private_sshd.directory / "host_key_b")
    private_sshd.restart(new_key)
    old_fp = keygen_fingerprint(private_sshd.directory / "host_key_a.pub")
    new_fp = keygen_fingerprint(private_sshd.directory / "host_key_b.pub")
    # Even a caller that believes the VM is fresh cannot replace a pinned key.
    for fresh in (False, True):
        with pytest.raises(HostKeyError) as info:
            connect(private_sshd, known_hosts, fresh=fresh)
        message = str(info.value)
        assert old_fp in message and new_fp in message
        assert "changed" in message
        assert info.value.hint is not None
        assert "pr-test-vm rebuild vm3" in info.value.hint and str(known_hosts) in info.value.hint
    assert known_hosts.read_bytes() == pinned


def test_deleting_the_file_allows_a_fresh_pin(private_sshd: SSHDaemon, tmp_path: Path) -> None:
    known_hosts = tmp_path / "known_hosts"
    connect(private_sshd, known_hosts, fresh=True).close()
    private_sshd.restart(make_host_key(private_sshd.directory / "host_key_b"))
    with pytest.raises(HostKeyError):
        connect(private_sshd, known_hosts, fresh=False)
    known_hosts.unlink()
    connect(private_sshd, known_hosts, fresh=True).close()
    blob = (private_sshd.directory / "host_key_b.pub").read_text().split()[1]
    assert [e.blob for e in KnownHosts(known_hosts).entries()] == [blob]


# -- the file itself ----------------------------------------------------------------------

KEY_A = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519" + b"A" * 36).decode()
KEY_B = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519" + b"B" * 36).decode()


def test_host_ids() -> None:
    assert host_id("192.168.150.10") == "192.168.150.10"
    assert host_id("192.168.150.10", 2222) == "[192.168.150.10]:2222"


def test_fingerprint_format() -> None:
    # The well-known SHA256 of an empty blob, without base64 padding.
    assert fingerprint(b"") == "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"


def test_record_forget_and_mode(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        kh = KnownHosts(tmp_path / "new" / "known_hosts")
        kh.record("10.0.0.1", 22, "ssh-ed25519", KEY_A)
        kh.record("10.0.0.2", 2222, "ssh-ed25519", KEY_B)
    finally:
        os.umask(old)
    assert stat.S_IMODE(kh.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(kh.path.parent.stat().st_mode) == 0o700
    assert kh.path.read_text() == (
        f"10.0.0.1 ssh-ed25519 {KEY_A}\n[10.0.0.2]:2222 ssh-ed25519 {KEY_B}\n"
    )
    assert [e.blob for e in kh.keys_for("10.0.0.2", 2222)] == [KEY_B]
    assert kh.keys_for("10.0.0.2") == []
    # The same key again is a no-op; another key for a pinned host is refused.
    kh.record("10.0.0.1", 22, "ssh-ed25519", KEY_A)
    with pytest.raises(HostKeyError):
        kh.record("10.0.0.1", 22, "ssh-ed25519", KEY_B)
    assert kh.forget("10.0.0.1") == 1
    assert kh.path.read_text() == f"[10.0.0.2]:2222 ssh-ed25519 {KEY_B}\n"
    assert kh.forget("10.0.0.1") == 0
    # No temporary files are left next to it (only the lock file).
    assert sorted(p.name for p in kh.path.parent.iterdir()) == [".known_hosts.lock", "known_hosts"]


def test_malformed_lines_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    path.write_text(
        f"# comment\n\nbroken\n10.0.0.1 ssh-ed25519 !!notbase64!!\nh ssh-ed25519 {KEY_A}\n"
    )
    assert [(e.host, e.blob) for e in KnownHosts(path).entries()] == [("h", KEY_A)]


def test_concurrent_records_keep_one_pin(tmp_path: Path) -> None:
    """Two recorders racing for the same host: exactly one key wins, the other is refused."""
    kh = KnownHosts(tmp_path / "known_hosts")
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def record(blob: str) -> None:
        barrier.wait()
        try:
            kh.record("10.0.0.9", 22, "ssh-ed25519", blob)
            outcomes.append(blob)
        except HostKeyError:
            outcomes.append("refused")

    threads = [threading.Thread(target=record, args=(KEY_A if i % 2 else KEY_B,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entries = kh.entries()
    assert len(entries) == 1
    winner = entries[0].blob
    assert outcomes.count(winner) == 4
    assert outcomes.count("refused") == 4
