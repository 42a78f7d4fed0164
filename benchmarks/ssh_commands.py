#!/usr/bin/env python3
"""What an SSH command costs through GuestSSH: connect, one command, many at once.

The restriction checks run dozens of probes over one connection, so the per-command cost and
what concurrency buys decide how long a check takes. Measured against a real OpenSSH sshd and
(as root) Dropbear, the tiny guest's server, both on 127.0.0.1, started from the same helpers
the tests use; or against a VM with ``--vm NAME`` (run it inside the lab's namespace).

    /work/venv/bin/python benchmarks/ssh_commands.py [-n COMMANDS] [--vm NAME]

Figures are medians; the guest's own shell start-up is part of every command (root's
``.bashrc`` runs for each command sshd starts).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "unit" / "ssh")]

from stagingvm.ssh.client import GuestSSH  # noqa: E402


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def measure(name: str, connect: Callable[[], GuestSSH], n: int) -> None:
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


@contextmanager
def local_servers() -> Iterator[list[tuple[str, Callable[[], GuestSSH]]]]:
    from sshd_server import DropbearDaemon, connect_to, start_daemon

    with tempfile.TemporaryDirectory() as tmp:
        sshd = start_daemon(Path(tmp) / "sshd")
        servers: list[tuple[str, Callable[[], GuestSSH]]] = [
            ("OpenSSH on 127.0.0.1", lambda: connect_to(sshd, fresh=True))
        ]
        dropbear = None
        if os.geteuid() == 0:
            dropbear = DropbearDaemon(Path(tmp) / "db", Path(tmp) / "db" / "keys" / "id")
            dropbear.directory.mkdir()
            dropbear.start()
            servers.append(("Dropbear on 127.0.0.1", lambda: connect_to(dropbear, fresh=True)))
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
        from stagingvm.config import load_settings
        from stagingvm.vm import Manager

        settings = load_settings(env=os.environ).settings
        target = Manager(settings).ssh_target(args.vm)
        measure(
            f"VM {args.vm}",
            lambda: GuestSSH.connect(
                target.host,
                user=target.user,
                key_path=target.key_path,
                known_hosts=target.known_hosts,
                port=target.port,
            ),
            args.n,
        )
        return 0
    with local_servers() as servers:
        for name, connect in servers:
            measure(name, connect, args.n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
