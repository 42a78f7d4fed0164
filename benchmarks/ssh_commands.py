#!/usr/bin/env python3
"""What an SSH command costs through GuestSSH: connect, one command, many at once.

The restriction checks run dozens of probes over one connection, so the per-command cost and
what concurrency buys decide how long a check takes. Measured against a real OpenSSH sshd and
(as root) Dropbear, the tiny guest's server, both on 127.0.0.1, started from the same helpers
the tests use; or against a VM with ``--vm NAME`` (run it inside the lab's namespace).

    /work/venv/bin/python benchmarks/ssh_commands.py [-n COMMANDS] [--vm NAME]

Figures are medians; the guest's own shell start-up is part of every command (root's
``.bashrc`` runs for each command sshd starts). The baseline, in the same run and against the
same server: one OpenSSH ``ssh`` process per command (how a shell script runs probes), one
after another and 8 at a time; ratios are baseline time / GuestSSH time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "unit" / "ssh")]

from stagingvm.ssh.client import GuestSSH  # noqa: E402


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


@dataclass(frozen=True)
class Login:
    host: str
    port: int
    user: str
    key: Path
    known_hosts: Path


def measure(name: str, connect: Callable[[], GuestSSH], n: int) -> tuple[float, float]:
    """Print GuestSSH's figures; return (median single command, n at once) in seconds."""
    connects = []
    for _ in range(5):
        connects.append(timed(lambda: connect().close()))
    with connect() as ssh:
        ssh.run(["true"], timeout=60)  # warm up
        singles = [timed(lambda: ssh.run(["true"], timeout=60)) for _ in range(n)]
        with ThreadPoolExecutor(max_workers=20) as pool:
            burst = timed(
                lambda: list(pool.map(lambda _: ssh.run(["true"], timeout=300), range(n)))
            )
        megabyte = timed(lambda: ssh.run(["head", "-c", "1048576", "/dev/zero"], timeout=60))
        print(
            f"{name:<22} {ssh.server_version[:28]:<29} sessions {ssh.max_sessions:>2}  "
            f"connect {statistics.median(connects) * 1000:6.0f} ms  "
            f"command {statistics.median(singles) * 1000:6.1f} ms  "
            f"{n} at once {burst:5.2f} s ({n / burst:5.1f}/s)  "
            f"1 MiB out {megabyte * 1000:5.0f} ms"
        )
    return statistics.median(singles), burst


def ssh_argv(login: Login) -> list[str]:
    """OpenSSH with the same key and pinned host key; no config, agent or prompts."""
    return [
        "ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
        "-o", "IdentityAgent=none", "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={login.known_hosts}", "-i", str(login.key),
        "-p", str(login.port), "-l", login.user, login.host, "true",
    ]  # fmt: skip


def measure_openssh(login: Login, n: int, single: float, burst: float) -> None:
    argv = ssh_argv(login)

    failed = 0

    def one() -> None:
        nonlocal failed
        done = subprocess.run(argv, check=False, stdin=subprocess.DEVNULL, capture_output=True)
        failed += done.returncode != 0

    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, capture_output=True)  # warm up
    singles = [timed(one) for _ in range(n)]
    sequential = sum(singles)
    with ThreadPoolExecutor(max_workers=8) as pool:
        eight = timed(lambda: list(pool.map(lambda _: one(), range(n))))
    print(
        f"{'  baseline: ssh process':<22} {'OpenSSH client':<29} per command  "
        f"command {statistics.median(singles) * 1000:6.1f} ms "
        f"(x{statistics.median(singles) / single:4.1f})  "
        f"{n} in a row {sequential:5.2f} s (x{sequential / burst:4.1f})  "
        f"{n} 8 at a time {eight:5.2f} s (x{eight / burst:4.1f})"
        + (f"  {failed} of {2 * n} refused by the server" if failed else "")
    )


@contextmanager
def local_servers() -> Iterator[list[tuple[str, Callable[[], GuestSSH], Login]]]:
    from sshd_server import DropbearDaemon, SSHDaemon, connect_to, start_daemon

    with tempfile.TemporaryDirectory() as tmp:
        sshd = start_daemon(Path(tmp) / "sshd")

        def login(daemon: SSHDaemon | DropbearDaemon) -> Login:
            return Login(
                daemon.host, daemon.port, daemon.user, daemon.client_key,
                daemon.directory / "known_hosts",
            )  # fmt: skip

        servers: list[tuple[str, Callable[[], GuestSSH], Login]] = [
            ("OpenSSH on 127.0.0.1", lambda: connect_to(sshd, fresh=True), login(sshd))
        ]
        dropbear = None
        if os.geteuid() == 0:
            dropbear = DropbearDaemon(Path(tmp) / "db", Path(tmp) / "db" / "keys" / "id")
            dropbear.directory.mkdir()
            dropbear.start()
            servers.append(
                ("Dropbear on 127.0.0.1", lambda: connect_to(dropbear, fresh=True), login(dropbear))
            )
        try:
            yield servers
        finally:
            sshd.stop()
            if dropbear is not None:
                dropbear.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=40, help="commands per measurement")
    parser.add_argument("--vm", help="measure against this stagingvm VM instead")
    args = parser.parse_args()
    if args.vm:
        from stagingvm.config.load import load_settings
        from stagingvm.vm.manager import Manager

        settings = load_settings(env=os.environ).settings
        target = Manager(settings).ssh_target(args.vm)
        single, burst = measure(
            f"VM {args.vm}",
            lambda: GuestSSH.to(target),
            args.n,
        )
        login = Login(target.host, target.port, target.user, target.key_path, target.known_hosts)
        measure_openssh(login, args.n, single, burst)
        return 0
    with local_servers() as servers:
        for name, connect, login in servers:
            single, burst = measure(name, connect, args.n)
            measure_openssh(login, args.n, single, burst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
