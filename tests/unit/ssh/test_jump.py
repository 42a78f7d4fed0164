"""Guests reached through their libvirt host: real sshd's on 127.0.0.1, one standing in for
the libvirt host (the jump), one for the guest behind it."""

from __future__ import annotations

import dataclasses
import getpass
from pathlib import Path

import pytest

from stagingvm.errors import ConfigError, HostKeyError
from stagingvm.settings import RemoteSettings, Settings
from stagingvm.ssh.client import GuestSSH, SSHConnectError
from stagingvm.ssh.jump import JumpHost, jump_for
from stagingvm.ssh.known_hosts import KnownHosts
from stagingvm.ssh.sshconfig import HostEntry, host_block
from stagingvm.ssh.target import SSHTarget
from stagingvm.vm.readiness import SSHProbes
from tests.unit.ssh.sshd_server import SSHDaemon, free_port, make_host_key


def settings(uri: str, tmp_path: Path, **remote: object) -> Settings:
    return Settings(uri=uri, data_dir=tmp_path / "data", remote=RemoteSettings(**remote))  # type: ignore[arg-type]


@pytest.mark.parametrize("uri", ["qemu:///system", "test:///default", "qemu+tls://h/system"])
def test_no_jump_for_local_or_non_ssh_uris(uri: str, tmp_path: Path) -> None:
    assert jump_for(settings(uri, tmp_path)) is None


def test_jump_from_a_qemu_ssh_uri(tmp_path: Path) -> None:
    s = settings("qemu+ssh://ci@vmhost.example.org:2222/system?keyfile=/k/id", tmp_path)
    jump = jump_for(s)
    assert jump is not None
    assert (jump.user, jump.host, jump.port, jump.key_path) == (
        "ci",
        "vmhost.example.org",
        2222,
        Path("/k/id"),
    )
    assert jump.known_hosts == tmp_path / "data" / "hosts" / "known_hosts"
    assert jump.spec == "ci@vmhost.example.org:2222"
    bare = jump_for(settings("qemu+ssh://vmhost/system", tmp_path))
    assert bare is not None
    assert (bare.user, bare.port, bare.key_path) == (getpass.getuser(), 22, s.ssh_key_path)


def test_remote_jump_setting_wins_and_is_checked(tmp_path: Path) -> None:
    jump = jump_for(settings("qemu+tls://h/system", tmp_path, jump="ops@[fd00::5]:2200"))
    assert jump is not None
    assert (jump.user, jump.host, jump.port, jump.spec) == (
        "ops",
        "fd00::5",
        2200,
        "ops@[fd00::5]:2200",
    )
    for bad in ("ops@", "ops@host:99999", "a b@host", "ops@ho st"):
        with pytest.raises(ConfigError):
            jump_for(settings("qemu+tls://h/system", tmp_path, jump=bad))


# -- through a real sshd -------------------------------------------------------------------


@pytest.fixture
def guest_and_jump(
    sshd: SSHDaemon, private_sshd: SSHDaemon, tmp_path: Path
) -> tuple[SSHDaemon, JumpHost]:
    """*sshd* is the guest; *private_sshd* the libvirt host, whose key OpenSSH "knows"."""
    host = private_sshd
    trusted = tmp_path / "user_known_hosts"
    pub = (host.directory / "host_key_a.pub").read_text().split()
    trusted.write_text(f"[{host.host}]:{host.port} {pub[0]} {pub[1]}\n")
    jump = JumpHost(
        host=host.host,
        port=host.port,
        user=host.user,
        key_path=host.client_key,
        known_hosts=tmp_path / "data" / "hosts" / "known_hosts",
        trusted=(tmp_path / "missing", trusted),
    )
    return sshd, jump


def guest_target(guest: SSHDaemon, jump: JumpHost | None, tmp_path: Path) -> SSHTarget:
    return SSHTarget(
        host=guest.host,
        port=guest.port,
        user=guest.user,
        key_path=guest.client_key,
        known_hosts=tmp_path / "guest_known_hosts",
        jump=jump,
    )


def test_a_guest_through_the_jump_pins_the_host_key_openssh_trusts(
    guest_and_jump: tuple[SSHDaemon, JumpHost], tmp_path: Path
) -> None:
    guest, jump = guest_and_jump
    target = guest_target(guest, jump, tmp_path)
    with GuestSSH.to(target, record_first_key=True) as conn:
        result = conn.run(["sh", "-c", "echo $SSH_CONNECTION"], timeout=10)
    assert result.ok
    # The guest saw a connection from the jump host's sshd, not from this process directly.
    assert result.stdout.split()[2:4] == [guest.host.encode(), str(guest.port).encode()]
    pinned = KnownHosts(jump.known_hosts).keys_for(jump.host, jump.port)
    assert [(k.keytype, k.blob) for k in pinned] == [
        tuple((Path(jump.key_path).parent.parent / "host_key_a.pub").read_text().split()[:2])
    ]
    assert KnownHosts(target.known_hosts).keys_for(guest.host, guest.port)
    # Later connections check against the pin, not the user's file.
    Path(jump.trusted[1]).write_text("")
    with GuestSSH.to(target) as conn:
        assert conn.run(["true"], timeout=10).ok


def test_an_unknown_or_changed_host_key_is_refused(
    guest_and_jump: tuple[SSHDaemon, JumpHost], tmp_path: Path, private_sshd: SSHDaemon
) -> None:
    guest, jump = guest_and_jump
    unknown = dataclasses.replace(jump, trusted=(tmp_path / "missing",))
    with pytest.raises(HostKeyError, match="not known"):
        GuestSSH.to(guest_target(guest, unknown, tmp_path), record_first_key=True)
    assert not jump.known_hosts.exists()
    with GuestSSH.to(guest_target(guest, jump, tmp_path), record_first_key=True):
        pass
    private_sshd.restart(make_host_key(tmp_path / "other_key"))
    with pytest.raises(HostKeyError, match="changed"):
        GuestSSH.to(guest_target(guest, jump, tmp_path))


def test_the_readiness_probes_go_through_the_jump(
    guest_and_jump: tuple[SSHDaemon, JumpHost], tmp_path: Path
) -> None:
    guest, jump = guest_and_jump
    probes = SSHProbes(port=guest.port, jump=jump)
    try:
        assert probes.banner(guest.host, free_port(), 5.0) is None  # closed port: keep waiting
        banner = probes.banner(guest.host, guest.port, 5.0)
        assert banner is not None and banner.startswith("SSH-2.0-OpenSSH")
        assert probes.login(
            guest.host,
            user=guest.user,
            key_path=guest.client_key,
            known_hosts=tmp_path / "guest_known_hosts",
            timeout=10.0,
            record_first_key=True,
        )
    finally:
        probes.release(guest.host, guest.port)


def test_a_jump_host_that_is_down_is_named(
    guest_and_jump: tuple[SSHDaemon, JumpHost], tmp_path: Path
) -> None:
    guest, jump = guest_and_jump
    down = dataclasses.replace(jump, port=free_port())
    with pytest.raises(SSHConnectError, match=f"libvirt host .*127.0.0.1\\]:{down.port}"):
        GuestSSH.to(guest_target(guest, down, tmp_path))
    probes = SSHProbes(port=guest.port, jump=down)
    with pytest.raises(SSHConnectError, match="libvirt host"):
        probes.banner(guest.host, guest.port, 2.0)


def test_ssh_config_says_proxyjump(
    guest_and_jump: tuple[SSHDaemon, JumpHost], tmp_path: Path
) -> None:
    guest, jump = guest_and_jump
    block = host_block(HostEntry("pr-1", guest_target(guest, jump, tmp_path)))
    assert f"  ProxyJump {jump.user}@127.0.0.1:{jump.port}\n" in block
    assert "ProxyJump" not in host_block(HostEntry("pr-1", guest_target(guest, None, tmp_path)))


def test_remote_known_hosts_replaces_openssh_files(tmp_path: Path) -> None:
    s = settings("qemu+ssh://vmhost/system", tmp_path, known_hosts=tmp_path / "kh")
    jump = jump_for(s)
    assert jump is not None and jump.trusted == (tmp_path / "kh",)
