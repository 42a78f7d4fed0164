"""A real OpenSSH sshd on 127.0.0.1 for the SSH adapter's tests (fixtures in conftest.py).

Each daemon runs in the foreground (``-D -e``) from a config of its own in a temporary
directory: its own host key, a free port, ``AuthorizedKeysFile`` pointing at a temporary file
that holds the test client's key. It logs in the user running the tests (root in CI).
Tests are skipped, with the reason, only when sshd is not installed.
"""

from __future__ import annotations

import getpass
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from stagingvm.ssh.client import GuestSSH
from stagingvm.ssh.keys import ensure_client_key

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_host_key(path: Path, keytype: str = "ed25519") -> Path:
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", keytype, "-N", "", "-C", "test-host", "-f", str(path)],
        check=True,
    )
    return path


UNSHARE = shutil.which("unshare") or "/usr/bin/unshare"
_HOME_SCRIPT = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'


def with_clean_home(home: Path, argv: list[str]) -> list[str]:
    """*argv* run in a mount namespace of its own where *home* is bind-mounted over the user's
    home directory (root only; otherwise *argv* unchanged).

    Dropbear reads ~USER/.ssh/authorized_keys and has no option to look elsewhere; and every
    command a server starts runs the user's shell start-up files (root's .bashrc here runs
    ``pyenv init``: 1.5 s, and output a test would have to ignore). The real home is never
    touched, and the mount is invisible outside the namespace.
    """
    if os.geteuid() != 0 or not os.access(UNSHARE, os.X_OK):
        return argv
    real_home = pwd.getpwuid(os.getuid()).pw_dir
    return [
        UNSHARE,
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        _HOME_SCRIPT,
        "sh",
        str(home),
        real_home,
        *argv,
    ]


def wait_listening(process: subprocess.Popen[bytes], host: str, port: int, log: Path) -> None:
    """Wait until the daemon accepts connections; fail with its log if it exits."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited: {log.read_text()}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port}: {log.read_text()}")


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        process.wait(timeout=10)


def connect_to(
    daemon: SSHDaemon | DropbearDaemon, *, fresh: bool = False, known_hosts: Path | None = None
) -> GuestSSH:
    """A GuestSSH to *daemon* with its client key; pins the first key when *fresh*."""
    return GuestSSH.connect(
        daemon.host,
        port=daemon.port,
        user=daemon.user,
        key_path=daemon.client_key,
        known_hosts=known_hosts or daemon.directory / "known_hosts",
        record_first_key=fresh,
    )


def strict_login(daemon: SSHDaemon | DropbearDaemon, known_hosts: Path) -> bool:
    """The readiness wait's login to *daemon* when its host keys were pinned beforehand."""
    from stagingvm.vm.readiness import SSHProbes

    return SSHProbes(port=daemon.port).login(
        daemon.host,
        user=daemon.user,
        key_path=daemon.client_key,
        known_hosts=known_hosts,
        timeout=10.0,
        record_first_key=False,
    )


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

    def start(self, host_key: Path, *more_host_keys: Path) -> None:
        config = self.directory / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    f"ListenAddress {self.host}",
                    *(f"HostKey {key}" for key in (host_key, *more_host_keys)),
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
        home = self.directory / "home"
        home.mkdir(mode=0o700, exist_ok=True)
        self.process = subprocess.Popen(
            with_clean_home(home, [SSHD, "-D", "-e", "-f", str(config)]), stdout=log, stderr=log
        )
        log.close()
        wait_listening(self.process, self.host, self.port, self.log)

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def restart(self, host_key: Path, *more_host_keys: Path) -> None:
        self.stop()
        self.start(host_key, *more_host_keys)


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


DROPBEAR = shutil.which("dropbear") or "/usr/sbin/dropbear"
DROPBEARKEY = shutil.which("dropbearkey") or "/usr/bin/dropbearkey"


@dataclass
class DropbearDaemon:
    """Dropbear, the SSH server of the tiny test guest, on 127.0.0.1 (root only)."""

    directory: Path
    client_key: Path
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    user: str = field(default_factory=getpass.getuser)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        home = self.directory / "home"
        (home / ".ssh").mkdir(parents=True, mode=0o700)
        public = ensure_client_key(self.client_key)
        authorized = home / ".ssh" / "authorized_keys"
        authorized.write_text(public + "\n")
        authorized.chmod(0o600)
        host_key = self.directory / "dropbear_ed25519_host_key"
        subprocess.run(
            [DROPBEARKEY, "-t", "ed25519", "-f", str(host_key)], check=True, capture_output=True
        )
        log_path = self.directory / "dropbear.log"
        log = log_path.open("ab")
        argv = [DROPBEAR, "-F", "-E", "-s", "-m", "-p", f"{self.host}:{self.port}"]
        argv += ["-r", str(host_key), "-P", str(self.directory / "dropbear.pid")]
        self.process = subprocess.Popen(
            with_clean_home(home, argv),
            stdout=log,
            stderr=log,
        )
        log.close()
        wait_listening(self.process, self.host, self.port, log_path)

    def stop(self) -> None:
        stop_process(self.process)  # exec'd by the shell: this is dropbear itself
        self.process = None


def require_dropbear() -> None:
    for tool in (DROPBEAR, DROPBEARKEY, UNSHARE):
        if not os.access(tool, os.X_OK):
            pytest.skip(f"{tool} not installed (apt-get install dropbear-bin util-linux)")
    if os.geteuid() != 0:
        pytest.skip("the dropbear fixture needs root (a private mount namespace)")
