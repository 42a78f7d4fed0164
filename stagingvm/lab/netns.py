"""Network namespaces: create, delete, and tell which namespace a process lives in.

A named namespace is a bind mount at ``/run/netns/NAME`` (what ``ip netns add`` makes). Two
namespaces are the same when their nsfs files have the same device and inode, so a process
belongs to namespace NAME when ``stat(/proc/PID/ns/net)`` equals ``stat(/run/netns/NAME)``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from stagingvm.errors import LabError, ToolMissingError
from stagingvm.names import validate_name

NETNS_DIR = Path("/run/netns")
PROC = Path("/proc")

NsId = tuple[int, int]
"""(st_dev, st_ino) of a namespace file: equal ids, same namespace."""


def validate_namespace(name: str) -> str:
    return validate_name(name, what="namespace name")


def ns_path(name: str) -> Path:
    return NETNS_DIR / validate_namespace(name)


def _ns_id(path: Path) -> NsId | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def namespace_id(name: str) -> NsId | None:
    """The id of named namespace *name*, or None if it does not exist."""
    return _ns_id(ns_path(name))


def process_ns_id(pid: int) -> NsId | None:
    """The id of the network namespace of process *pid* (None if it is gone)."""
    return _ns_id(PROC / str(pid) / "ns" / "net")


def exists(name: str) -> bool:
    return namespace_id(name) is not None


def in_namespace(pid: int, name: str) -> bool:
    """Whether process *pid* runs in namespace *name* (False if either does not exist)."""
    wanted = namespace_id(name)
    return wanted is not None and process_ns_id(pid) == wanted


def self_in_namespace(name: str) -> bool:
    """Whether this process runs inside namespace *name*."""
    return in_namespace(os.getpid(), name)


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    comm: str

    def __str__(self) -> str:
        return f"{self.comm} (pid {self.pid})"


def process_comm(pid: int) -> str | None:
    """The command name of live process *pid*; None if it is gone or a zombie.

    Read from ``/proc/PID/stat`` ("PID (COMM) STATE ..."): a zombie nobody reaps keeps its
    name but is not running, and must not count as a running daemon.
    """
    try:
        stat = (PROC / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    head, _, tail = stat.rpartition(")")
    comm = head.partition("(")[2]
    fields = tail.split()
    if not fields or fields[0] in ("Z", "X"):
        return None
    return comm


def all_processes() -> list[ProcessInfo]:
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            comm = process_comm(int(entry.name))
            if comm is not None:
                found.append(ProcessInfo(int(entry.name), comm))
    return found


def processes_in(name: str) -> list[ProcessInfo]:
    """Every process whose network namespace is *name* (empty if it does not exist)."""
    wanted = namespace_id(name)
    if wanted is None:
        return []
    return [p for p in all_processes() if process_ns_id(p.pid) == wanted]


def _ip(args: Sequence[str]) -> None:
    ip = shutil.which("ip")
    if ip is None:
        raise ToolMissingError(
            "the `ip` command is missing", hint="install it: apt-get install iproute2"
        )
    proc = subprocess.run([ip, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise LabError(
            f"`ip {' '.join(args)}` failed: {proc.stderr.strip() or proc.returncode}",
            hint="the lab needs root (network namespaces)",
        )


def create(name: str) -> bool:
    """Create namespace *name* if missing and bring its loopback up. True if it was created."""
    created = False
    if not exists(name):
        _ip(["netns", "add", validate_namespace(name)])
        created = True
    _ip(["-n", name, "link", "set", "lo", "up"])
    return created


def delete(name: str) -> bool:
    """Delete namespace *name* (its mount). True if it existed.

    Processes still inside keep the namespace alive, nameless; the caller reports them.
    """
    if not exists(name):
        return False
    _ip(["netns", "delete", validate_namespace(name)])
    return True


def exec_argv(name: str, argv: Sequence[str]) -> list[str]:
    """The argument list that runs *argv* inside namespace *name*."""
    return ["ip", "netns", "exec", validate_namespace(name), *argv]
