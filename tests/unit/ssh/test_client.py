"""GuestSSH against a real sshd: exit status, streams, stdin, time-outs, concurrency, auth."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from stagingvm.errors import InvalidInputError, WaitTimeoutError
from stagingvm.ssh.client import CommandResult, GuestSSH, SSHAuthError, SSHConnectError
from stagingvm.ssh.keys import ensure_client_key
from tests.unit.ssh.sshd_server import SSHDaemon, connect_to, free_port


@pytest.fixture(scope="module")
def ssh(sshd: SSHDaemon) -> Iterator[GuestSSH]:
    with connect_to(sshd, fresh=True) as connection:
        yield connection


@pytest.mark.parametrize("status", [0, 1, 42])
def test_exit_status_is_propagated(ssh: GuestSSH, status: int) -> None:
    result = ssh.run(["sh", "-c", f"exit {status}"], timeout=10)
    assert isinstance(result, CommandResult)
    assert result.exit_status == status
    assert result.ok is (status == 0)
    assert result.duration > 0


def test_stdout_and_stderr_stay_apart(ssh: GuestSSH) -> None:
    result = ssh.run(["sh", "-c", "echo out1; echo err1 >&2; echo out2; echo err2 >&2"], timeout=10)
    assert result.stdout == b"out1\nout2\n"
    assert result.stderr == b"err1\nerr2\n"


def test_arguments_are_not_reparsed_by_the_guest_shell(ssh: GuestSSH) -> None:
    hostile = ["a b", "; echo injected", "$(id)", "`id`", "'\"", "*", "\\n", ""]
    result = ssh.run(["printf", "%s\\n", *hostile], timeout=10)
    assert result.stdout.decode().split("\n")[:-1] == hostile


def test_without_stdin_the_command_reads_eof(ssh: GuestSSH) -> None:
    result = ssh.run(["sh", "-c", "if read line; then echo got; else echo eof; fi"], timeout=10)
    assert result.stdout == b"eof\n"
    assert ssh.run(["cat"], timeout=10).stdout == b""


def test_stdin_is_delivered_then_eof(ssh: GuestSSH) -> None:
    assert ssh.run(["cat"], timeout=10, stdin=b"line1\nline2").stdout == b"line1\nline2"
    result = ssh.run(["wc", "-c"], timeout=10, stdin=b"")
    assert result.stdout.strip() == b"0"


def test_large_stdin_and_stdout_do_not_deadlock(ssh: GuestSSH) -> None:
    """cat echoes 8 MiB while we are still sending: both SSH windows fill up."""
    data = os.urandom(8 * 1024 * 1024)
    result = ssh.run(["cat"], timeout=60, stdin=data)
    assert result.exit_status == 0
    assert result.stdout == data


def test_timeout_closes_the_channel_and_names_the_phase(ssh: GuestSSH) -> None:
    with pytest.raises(WaitTimeoutError) as info:
        ssh.run(["sleep", "30"], timeout=0.5)
    assert info.value.phase == "command"
    assert info.value.elapsed >= 0.5
    assert "sleep 30" in str(info.value)
    # The connection is still usable afterwards.
    assert ssh.run(["echo", "after"], timeout=10).stdout == b"after\n"


def test_twenty_concurrent_runs_over_one_connection(ssh: GuestSSH) -> None:
    """More than sshd's MaxSessions (10) at once: they queue for a channel, none fails."""

    def probe(i: int) -> CommandResult:
        return ssh.run(
            ["sh", "-c", f"sleep 0.3; echo {i}; echo e{i} >&2; exit {i % 7}"], timeout=60
        )

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(probe, range(20)))
    for i, result in enumerate(results):
        assert result.stdout == f"{i}\n".encode()
        assert result.stderr == f"e{i}\n".encode()
        assert result.exit_status == i % 7


def test_run_script_goes_on_stdin(ssh: GuestSSH) -> None:
    script = """
set -eu
name="$1"
cat <<EOF
hello ${name}
quote ' and "double" and \\$HOME stays
EOF
[ "$#" -eq 2 ] || exit 9
exit 7
"""
    result = ssh.run_script(script, timeout=10, args=["it's me", "x y"])
    assert result.exit_status == 7
    assert result.stdout == b"hello it's me\nquote ' and \"double\" and $HOME stays\n"


def test_empty_or_string_argv_is_refused(ssh: GuestSSH) -> None:
    with pytest.raises(InvalidInputError):
        ssh.run([], timeout=1)
    with pytest.raises(InvalidInputError):
        ssh.run("echo hi", timeout=1)  # a string is not an argument list


def test_large_output(ssh: GuestSSH) -> None:
    result = ssh.run(["head", "-c", "3000000", "/dev/zero"], timeout=60)
    assert len(result.stdout) == 3_000_000


def test_refused_key_names_user_and_key(sshd: SSHDaemon, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    ensure_client_key(stranger)
    with pytest.raises(SSHAuthError) as info:
        GuestSSH.connect(
            sshd.host,
            port=sshd.port,
            user=sshd.user,
            key_path=stranger,
            known_hosts=sshd.directory / "known_hosts",
        )
    assert f"{sshd.user}@[127.0.0.1]:{sshd.port}" in str(info.value)
    assert str(stranger) in str(info.value)
    assert info.value.exit_code == 7


def test_connection_refused(tmp_path: Path) -> None:
    key = tmp_path / "key"
    ensure_client_key(key)
    with pytest.raises(SSHConnectError):
        GuestSSH.connect(
            "127.0.0.1",
            port=free_port(),
            user="root",
            key_path=key,
            known_hosts=tmp_path / "known_hosts",
            timeout=2.0,
        )


def test_loose_key_permissions_refused_before_connecting(tmp_path: Path) -> None:
    key = tmp_path / "key"
    ensure_client_key(key)
    os.chmod(key, 0o644)
    with pytest.raises(InvalidInputError, match="group or others"):
        GuestSSH.connect(
            "127.0.0.1",
            port=free_port(),
            user="root",
            key_path=key,
            known_hosts=tmp_path / "known_hosts",
        )


def test_closed_connection_is_reported(sshd: SSHDaemon) -> None:
    ssh = connect_to(sshd)
    ssh.close()
    with pytest.raises(SSHConnectError, match="lost"):
        ssh.run(["true"], timeout=5)
