"""A real OpenSSH sshd on 127.0.0.1 for the SSH adapter's tests (fixtures in conftest.py).

Each daemon runs in the foreground (``-D -e``) from a config of its own in a temporary
directory: its own host key, a free port, ``AuthorizedKeysFile`` pointing at a temporary file
that holds the test client's key. It logs in the user running the tests (root in CI).
Tests are skipped, with the reason, only when sshd is not installed.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from stagingvm.ssh.keys import ensure_client_key

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_host_key(path: Path) -> Path:
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "test-host", "-f", str(path)],
        check=True,
    )
    return path


@dataclass
class SSHDaemon:
    """One sshd process; :meth:`restart` brings it back on the same port, maybe with another
    host key (what a recreated VM at the same address looks like)."""

    directory: Path
    client_key: Path
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    user: str = field(default_factory=getpass.getuser)
    max_sessions: int = 10
    process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.directory / "sshd.log"

    def start(self, host_key: Path) -> None:
        config = self.directory / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    f"ListenAddress {self.host}",
                    f"HostKey {host_key}",
                    f"AuthorizedKeysFile {self.directory / 'authorized_keys'}",
                    "PidFile none",
                    "StrictModes no",
                    "UsePAM no",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    "PermitRootLogin prohibit-password",
                    f"MaxSessions {self.max_sessions}",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )
        if os.geteuid() == 0:
            # sshd insists on its privilege-separation directory when run as root.
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        log = self.log.open("ab")
        self.process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=log
        )
        log.close()
        self._wait_listening()

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.log.read_text()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd did not listen on {self.port}: {self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def restart(self, host_key: Path) -> None:
        self.stop()
        self.start(host_key)


def require_sshd() -> None:
    if not os.access(SSHD, os.X_OK):
        pytest.skip(f"OpenSSH server not installed ({SSHD}); apt-get install openssh-server")
    if not os.access(SSH_KEYGEN, os.X_OK):
        pytest.skip(f"ssh-keygen not installed ({SSH_KEYGEN}); apt-get install openssh-client")


def start_daemon(directory: Path, *, max_sessions: int = 10) -> SSHDaemon:
    directory.mkdir(parents=True, exist_ok=True)
    client_key = directory / "keys" / "id_ed25519"
    public = ensure_client_key(client_key)
    (directory / "authorized_keys").write_text(public + "\n")
    daemon = SSHDaemon(directory, client_key, max_sessions=max_sessions)
    daemon.start(make_host_key(directory / "host_key_a"))
    return daemon
