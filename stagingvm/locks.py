"""File locks that make concurrent stagingvm invocations safe on one host.

Two kinds, both ``flock`` locks on files in ``<data_dir>/locks/`` (released by the kernel when
a process dies, so a crash never leaves a stale lock):
- the *host lock* around shared set-up: the network, the pool, DHCP host entries, base imports;
- one *VM lock* per name around each lifecycle verb (start, stop, destroy, rebuild).
Order: a VM lock first, then (briefly) the host lock, never the other way round.
``flock`` locks belong to an open file, so two threads of one process exclude each other too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from stagingvm.errors import ConfigError, ConflictError
from stagingvm.names import validate_name

DEFAULT_TIMEOUT = 120.0

AbstractLock = contextlib.AbstractContextManager[None]
POLL_INTERVAL = 0.1


@contextlib.contextmanager
def file_lock(
    path: Path,
    *,
    what: str,
    timeout: float = DEFAULT_TIMEOUT,
    while_waiting: Callable[[], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[None]:
    """Hold an exclusive lock on *path*; ConflictError ("busy") after *timeout* seconds.

    *while_waiting* runs between attempts and may raise to give up early (e.g. "already
    exists" once the lock holder has created what we wanted to create).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise ConfigError(
            f"cannot open the lock file {path}: {exc.strerror}",
            hint=unwritable_dir_hint(path.parent),
        ) from exc
    try:
        deadline = clock() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if while_waiting is not None:
                    while_waiting()
                if clock() >= deadline:
                    raise ConflictError(
                        f"{what} is busy: another stagingvm command holds {path}",
                        hint="wait for it to finish and try again",
                    ) from None
                sleep(POLL_INTERVAL)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())  # for people wondering who holds it
        except OSError:
            pass
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def host_lock(locks_dir: Path, *, timeout: float = DEFAULT_TIMEOUT) -> AbstractLock:
    """The host-wide lock: network, pool, DHCP host entries, base imports."""
    return file_lock(locks_dir / "host.lock", what="the stagingvm host set-up", timeout=timeout)


def vm_lock(
    locks_dir: Path,
    name: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    while_waiting: Callable[[], None] | None = None,
) -> AbstractLock:
    """The lock of VM *name* (validated here too: it becomes part of a path)."""
    validate_name(name)
    return file_lock(
        locks_dir / f"vm-{name}.lock",
        what=f"VM {name}",
        timeout=timeout,
        while_waiting=while_waiting,
    )


def unwritable_dir_hint(directory: Path) -> str:
    """What to do about a directory under data_dir that could not be made or written."""
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a directory: set data_dir (--data-dir) to a directory"
    return "run as root, or set data_dir to a directory you can write"
