"""GuestSSH.interactive on a real pty (shell, exit status, window size, resize) and on pipes."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from tests.unit.ssh.sshd_server import SSHDaemon

DRIVER = Path(__file__).with_name("interactive_driver.py")
REPO = Path(__file__).resolve().parents[3]


def spec(sshd: SSHDaemon, tmp_path: Path, argv: list[str] | None, **extra: object) -> str:
    known_hosts = tmp_path / "known_hosts"
    if not known_hosts.exists():  # pin the daemon's key as a fresh start would
        from stagingvm.ssh.client import GuestSSH

        GuestSSH.connect(
            sshd.host,
            port=sshd.port,
            user=sshd.user,
            key_path=sshd.client_key,
            known_hosts=known_hosts,
            record_first_key=True,
        ).close()
    return json.dumps(
        {
            "host": sshd.host,
            "port": sshd.port,
            "user": sshd.user,
            "key": str(sshd.client_key),
            "known_hosts": str(known_hosts),
            "argv": argv,
            "report": str(tmp_path / "report.json"),
            **extra,
        }
    )


def driver_env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), TERM="xterm")
    env.pop("PYTHONSTARTUP", None)
    return env


class PtyChild:
    """The driver running with a pty as its controlling terminal; we hold the master side."""

    def __init__(self, args: str) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # child: replace ourselves at once, nothing of pytest runs here
            os.execve(sys.executable, [sys.executable, str(DRIVER), args], driver_env())
        self.pid, self.fd = pid, fd
        self.output = b""

    def read_until(self, needle: bytes, limit: float = 30.0) -> bytes:
        """Read until *needle* shows up (or EOF); a safety limit keeps a bug from hanging."""
        deadline = time.monotonic() + limit
        while needle not in self.output:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise AssertionError(f"{needle!r} not seen; output so far: {self.output!r}")
            readable, _, _ = select.select([self.fd], [], [], remaining)
            if not readable:
                continue
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                chunk = b""
            if not chunk:
                break
            self.output += chunk
        return self.output

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    def wait(self) -> int:
        self.read_until(b"\x00never\x00")  # drain to EOF
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)


def set_winsize(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def test_shell_on_a_pty_returns_the_exit_status(sshd: SSHDaemon, tmp_path: Path) -> None:
    child = PtyChild(spec(sshd, tmp_path, None, winsize=[30, 100]))
    child.read_until(b"#") if sshd.user == "root" else child.read_until(b"$")
    # h""i: the terminal's echo of the command line does not contain "hi" itself.
    child.write(b'stty size; echo h""i; exit 3\n')
    assert child.wait() == 3
    assert b"\r\nhi\r\n" in child.output
    assert b"30 100" in child.output  # the guest's PTY got our window size
    report = json.loads((tmp_path / "report.json").read_text())
    assert report == {"restored": True, "status": 3}


def test_resize_follows_the_local_terminal(sshd: SSHDaemon, tmp_path: Path) -> None:
    child = PtyChild(
        spec(sshd, tmp_path, ["sh", "-c", "stty size; read x; stty size; exit 4"], winsize=[24, 80])
    )
    child.read_until(b"24 80")
    set_winsize(child.fd, 40, 120)  # the kernel sends SIGWINCH to the child
    time.sleep(0.5)  # let the child pass the new size on before the guest reads it
    child.write(b"go\n")
    assert child.wait() == 4
    assert b"40 120" in child.output


def test_without_a_terminal_streams_stay_apart(sshd: SSHDaemon, tmp_path: Path) -> None:
    args = spec(sshd, tmp_path, ["sh", "-c", "cat; echo to-stderr >&2; exit 5"])
    done = subprocess.run(
        [sys.executable, str(DRIVER), args],
        input=b"piped input\n",
        capture_output=True,
        env=driver_env(),
        timeout=60,
    )
    assert done.returncode == 5
    assert done.stdout == b"piped input\n"  # no PTY: no \r\n, no echo
    assert done.stderr == b"to-stderr\n"
