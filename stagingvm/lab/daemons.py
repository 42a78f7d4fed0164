"""The lab's daemons (virtlogd, libvirtd): find them, start them in the namespace, stop them.

Hosts without systemd (CI containers, bare Debian machines) have nobody to start these, so the
lab does it: ``ip netns exec NS DAEMON --daemon``. A daemon counts as running when its pid file
names a live process with the daemon's command name; failing that, ``/proc`` is searched by
command name (a stale or missing pid file must not make us start a second libvirtd). Where it
runs is read from ``/proc/PID/ns/net``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stagingvm.errors import LabError
from stagingvm.lab import netns


@dataclass(frozen=True)
class Daemon:
    """How to start one daemon and how to recognise it (``comm`` as in ``/proc/PID/comm``)."""

    comm: str
    argv: Sequence[str]
    pid_file: Path
    # Does it create networks? libvirtd does (bridges, dnsmasq): it must run inside the
    # namespace. virtlogd only writes logs through a socket file: one outside serves the lab.
    network_facing: bool = True

    @property
    def name(self) -> str:
        return self.comm


VIRTLOGD = Daemon(
    "virtlogd", ("virtlogd", "--daemon"), Path("/run/virtlogd.pid"), network_facing=False
)
LIBVIRTD = Daemon("libvirtd", ("libvirtd", "--daemon"), Path("/run/libvirtd.pid"))
LAB_DAEMONS = (VIRTLOGD, LIBVIRTD)
"""In start order: libvirtd needs virtlogd for every domain's console log."""


@dataclass(frozen=True)
class DaemonState:
    name: str
    pid: int | None
    in_namespace: bool
    action: str = ""  # "adopted" | "started" | "stopped" | ""
    notes: list[str] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.pid is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pid": self.pid,
            "running": self.running,
            "in_namespace": self.in_namespace,
            "action": self.action or None,
        }


def read_pid(pid_file: Path) -> int | None:
    try:
        text = pid_file.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def running_pids(daemon: Daemon) -> list[int]:
    """Live processes of *daemon*: the pid file's if it is right, else a search of /proc."""
    pid = read_pid(daemon.pid_file)
    if pid is not None and netns.process_comm(pid) == daemon.comm:
        return [pid]
    return sorted(p.pid for p in netns.all_processes() if p.comm == daemon.comm)


def state(daemon: Daemon, namespace: str) -> DaemonState:
    """Where *daemon* runs: ``pid`` None if it does not run at all."""
    pids = running_pids(daemon)
    inside = [pid for pid in pids if netns.in_namespace(pid, namespace)]
    if inside:
        return DaemonState(daemon.name, inside[0], True)
    if pids:
        return DaemonState(daemon.name, pids[0], False)
    return DaemonState(daemon.name, None, False)


def outside(daemon: Daemon, namespace: str) -> list[int]:
    """Processes of *daemon* that run outside namespace *namespace*."""
    return [pid for pid in running_pids(daemon) if not netns.in_namespace(pid, namespace)]


def _wait(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def ensure(daemon: Daemon, namespace: str, *, timeout: float = 15.0) -> DaemonState:
    """Adopt *daemon* if it runs inside *namespace*, else start it there and wait for it.

    Refuses (LabError) when it runs outside the namespace: a second instance would fight
    over the same pid file and sockets.
    """
    now = state(daemon, namespace)
    if now.in_namespace:
        return DaemonState(daemon.name, now.pid, True, "adopted")
    if now.pid is not None and not daemon.network_facing:
        return DaemonState(
            daemon.name,
            now.pid,
            False,
            "adopted",
            [
                f"{daemon.name} (pid {now.pid}) runs outside the namespace: harmless, it only "
                "writes logs; the lab uses it"
            ],
        )
    if now.pid is not None:
        raise LabError(
            f"{daemon.name} (pid {now.pid}) runs outside the lab namespace {namespace!r}",
            hint=f"stop it first (kill {now.pid}, or systemctl stop {daemon.name}), "
            "then run `pr-test-vm lab up` again",
        )
    proc = subprocess.run(
        netns.exec_argv(namespace, daemon.argv), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise LabError(
            f"could not start {daemon.name} in namespace {namespace!r}: "
            f"{proc.stderr.strip() or f'exit status {proc.returncode}'}",
            hint=f"is {daemon.argv[0]} installed? (apt-get install libvirt-daemon-system)",
        )
    started: list[DaemonState] = []

    def up() -> bool:
        current = state(daemon, namespace)
        if current.in_namespace:
            started.append(current)
            return True
        return False

    if not _wait(up, timeout):
        raise LabError(
            f"{daemon.name} was started in namespace {namespace!r} but did not come up "
            f"within {timeout:g} s (no live process for {daemon.pid_file})",
            hint=f"run `ip netns exec {namespace} {daemon.argv[0]}` in the foreground to see why",
        )
    return DaemonState(daemon.name, started[-1].pid, True, "started")


def stop(daemon: Daemon, namespace: str, *, timeout: float = 15.0) -> DaemonState:
    """Stop *daemon* if it runs inside *namespace* (SIGTERM, then SIGKILL after *timeout*).

    A daemon outside the namespace is never touched.
    """
    now = state(daemon, namespace)
    if not now.in_namespace or now.pid is None:
        return DaemonState(daemon.name, None, False, "")
    pid = now.pid
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)

    def gone() -> bool:
        return netns.process_comm(pid) != daemon.comm

    notes = []
    if not _wait(gone, timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        notes.append(f"{daemon.name} ignored SIGTERM for {timeout:g} s: killed")
        if not _wait(gone, 5.0):
            raise LabError(f"{daemon.name} (pid {pid}) does not stop, even after SIGKILL")
    return DaemonState(daemon.name, pid, True, "stopped", notes)
