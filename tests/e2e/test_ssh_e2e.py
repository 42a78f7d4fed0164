"""SSH and the serial console against a real tiny guest (Dropbear, busybox) in the lab.

Uses the session's shared tiny VM (started by the Manager, which pinned its host key). The
interactive parts run in a child process on a pty, as a user's terminal would drive them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from stagingvm.errors import HostKeyError, WaitTimeoutError
from stagingvm.ssh.client import GuestSSH
from stagingvm.ssh.known_hosts import KnownHosts
from stagingvm.ssh.target import SSHTarget
from stagingvm.vm.manager import Manager
from tests.e2e.harness import Run
from tests.e2e.ptychild import PtyChild

CONSOLE_DRIVER = """
import json, sys, termios
from stagingvm.virt.console import attach
before = termios.tcgetattr(0)
reason = attach(sys.argv[1], sys.argv[2])
# Leading newline: the guest's last line may still be open when Ctrl+] detaches.
restored = before == termios.tcgetattr(0)
sys.stderr.write("\\n" + json.dumps({"reason": reason, "restored": restored}) + "\\n")
"""

SSH_DRIVER = """
import json, sys, termios
from pathlib import Path
from stagingvm.ssh.client import GuestSSH
t = json.loads(sys.argv[1])
before = termios.tcgetattr(0)
with GuestSSH.connect(t["host"], user=t["user"], key_path=Path(t["key"]),
                      known_hosts=Path(t["known_hosts"]), port=t["port"]) as ssh:
    status = ssh.interactive(None)
sys.stderr.write(json.dumps({"restored": before == termios.tcgetattr(0)}) + "\\n")
sys.exit(status)
"""


@pytest.fixture(scope="module")
def target(manager: Manager, shared_vm: str) -> SSHTarget:
    return manager.ssh_target(shared_vm)


@pytest.fixture(scope="module")
def ssh(target: SSHTarget) -> Iterator[GuestSSH]:
    with GuestSSH.to(target) as connection:
        yield connection


class ShellChild(PtyChild):
    """A driver on a pty (TERM=xterm); ``finish`` gives its JSON report."""

    def __init__(self, code: str, *args: str) -> None:
        super().__init__(code, *args, term="xterm")

    def finish(self) -> tuple[int, dict[str, object]]:
        status = self.wait()
        return status, json.loads(self.output.rstrip().rsplit(b"\n", 1)[-1])


def test_host_key_was_pinned_by_start(target: SSHTarget) -> None:
    entries = KnownHosts(target.known_hosts).entries()
    assert [e.host for e in entries] == [target.host]
    assert entries[0].keytype == "ssh-ed25519"


def test_commands_on_the_guest(ssh: GuestSSH) -> None:
    assert ssh.server_version.startswith("SSH-2.0-dropbear")
    result = ssh.run(["sh", "-c", "echo out; echo err >&2; exit 42"], timeout=60)
    assert (result.exit_status, result.stdout, result.stderr) == (42, b"out\n", b"err\n")
    assert ssh.run(["cat"], timeout=60).stdout == b""
    script = ssh.run_script('printf "%s|" "$@"; id -u', timeout=60, args=["a b", "$(id)"])
    assert script.stdout == b"a b|$(id)|0\n"


def test_concurrent_commands_lose_nothing(ssh: GuestSSH) -> None:
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(
            pool.map(
                lambda i: ssh.run(["sh", "-c", f"echo {i}; exit {i % 5}"], timeout=300),
                range(20),
            )
        )
    assert [(r.stdout, r.exit_status) for r in results] == [
        (f"{i}\n".encode(), i % 5) for i in range(20)
    ]


def test_timed_out_command_is_killed(ssh: GuestSSH) -> None:
    with pytest.raises(WaitTimeoutError) as info:
        ssh.run(["sleep", "4242"], timeout=1.0)
    assert info.value.phase == "command"
    left = ssh.run(["sh", "-c", "ps | grep -c '[s]leep 4242'"], timeout=60)
    assert left.stdout.strip() == b"0"


def test_unpinned_file_refuses_the_guest(target: SSHTarget, tmp_path: Path) -> None:
    with pytest.raises(HostKeyError):
        GuestSSH.connect(
            target.host,
            user=target.user,
            key_path=target.key_path,
            known_hosts=tmp_path / "known_hosts",
        )


def test_interactive_shell_on_a_pty(target: SSHTarget) -> None:
    spec = json.dumps(
        {
            "host": target.host,
            "port": target.port,
            "user": target.user,
            "key": str(target.key_path),
            "known_hosts": str(target.known_hosts),
        }
    )
    child = ShellChild(SSH_DRIVER, spec)
    child.read_until(b"# ")
    child.write(b'echo h""i-$((6*7)); exit 3\n')
    status, report = child.finish()
    assert status == 3
    assert b"hi-42" in child.output
    assert report == {"restored": True}


def test_serial_console_attach_type_and_leave(run: Run, shared_vm: str) -> None:
    child = ShellChild(CONSOLE_DRIVER, run.settings.uri, shared_vm)
    time.sleep(1.0)  # let it attach before the key press that wakes the askfirst shell
    child.write(b"\r")
    child.read_until(b"# ")
    child.write(b'echo h""i-$((6*7)); exit\r')  # exit: the next user gets a fresh prompt
    child.read_until(b"hi-42")
    child.write(b"\x1d")
    status, report = child.finish()
    assert status == 0
    assert report == {"reason": "escape", "restored": True}
