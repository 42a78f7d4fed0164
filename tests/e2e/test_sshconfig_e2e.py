"""Real OpenSSH through ``pr-test-vm ssh-config``, and ``pr-test-vm scp``, on the tiny guest.

Uses the session's shared tiny VM (Dropbear; started by the Manager, which pinned its host
key). The tiny guest has no sftp or scp server, so files are copied with ``pr-test-vm scp``;
OpenSSH's own ssh (command, and a -L forward to the guest's sshd) runs through the config.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.harness import Run

SSH = shutil.which("ssh")
pytestmark = pytest.mark.skipif(SSH is None, reason="OpenSSH client not installed")


@pytest.fixture(scope="module")
def config_file(run: Run, shared_vm: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = run.cli("ssh-config", shared_vm)
    assert result.returncode == 0, result.stderr.decode()
    path = tmp_path_factory.mktemp("sshconfig") / "config"
    path.write_bytes(result.stdout)
    return path


def openssh(config: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    assert SSH is not None
    return subprocess.run(
        [SSH, "-F", str(config), "-o", "BatchMode=yes", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_openssh_logs_in_with_the_pinned_key(config_file: Path, shared_vm: str) -> None:
    ok = openssh(config_file, shared_vm, "true")
    assert ok.returncode == 0, ok.stderr
    status = openssh(config_file, shared_vm, "exit 7")
    assert status.returncode == 7


def test_openssh_refuses_a_key_that_is_not_pinned(
    config_file: Path, shared_vm: str, tmp_path: Path
) -> None:
    text = config_file.read_text()
    known_hosts = next(
        line.split(None, 1)[1] for line in text.splitlines() if "UserKnownHostsFile" in line
    )
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    wrong = tmp_path / "config"
    wrong.write_text(text.replace(known_hosts, str(empty)))
    refused = openssh(wrong, shared_vm, "true")
    assert refused.returncode == 255
    assert "Host key verification failed" in refused.stderr


def test_local_forward_through_the_config(config_file: Path, shared_vm: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert SSH is not None
    forward = subprocess.Popen(
        [SSH, "-F", str(config_file), "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes",
         "-N", "-L", f"127.0.0.1:{port}:127.0.0.1:22", shared_vm],
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        banner = b""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not banner.startswith(b"SSH-"):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                    banner = sock.recv(64)
            except OSError:
                time.sleep(0.5)
        assert banner.startswith(b"SSH-2.0-"), banner  # the guest's sshd, through the tunnel
    finally:
        forward.terminate()
        forward.wait(timeout=10)


def test_scp_both_ways(run: Run, shared_vm: str, tmp_path: Path) -> None:
    payload = bytes(range(256)) * 64 + b"end\n"
    local = tmp_path / "payload.bin"
    local.write_bytes(payload)
    up = run.cli("scp", str(local), f"{shared_vm}:/tmp/payload with blank.bin")
    assert up.returncode == 0, up.stderr.decode()
    back = tmp_path / "back"
    back.mkdir()
    down = run.cli("scp", f"{shared_vm}:/tmp/payload with blank.bin", str(back))
    assert down.returncode == 0, down.stderr.decode()
    assert (back / "payload with blank.bin").read_bytes() == payload
    missing = run.cli("scp", f"{shared_vm}:/no/such/file", str(back / "x"))
    assert missing.returncode != 0
    assert b"copy failed" in missing.stderr
    assert not (back / "x").exists()
