"""File locks that make concurrent stagingvm invocations safe on one host.

Two kinds, both ``flock`` locks on files in ``<data_dir>/locks/`` (released by the kernel when
a process dies, so a crash never leaves a stale lock):
- the *host lock* around shared set-up: the network, the pool, DHCP host entries, base imports;
- one *VM lock* per name around each lifecycle verb (start, stop, destroy, rebuild);
- one *image lock* per recipe around a build of its image (and its removal).
``file_lock`` is also the lock of other shared files (e.g. a known_hosts file).
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
    timeout: float | None = DEFAULT_TIMEOUT,
    while_waiting: Callable[[], None] | None = None,
    waiting: Callable[[], AbstractLock] | None = None,
    busy: ConflictError | None = None,
    mode: int = 0o644,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[None]:
    """Hold an exclusive lock on *path*; *busy* (default: ConflictError "busy") after
    *timeout* seconds (None: wait as long as it takes; 0: one try).

    *while_waiting* runs between attempts and may raise to give up early (e.g. "already
    exists" once the lock holder has created what we wanted to create); *waiting* makes a
    context (e.g. a progress phase) held while the lock is busy.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, mode)
    except OSError as exc:
        raise ConfigError(
            f"cannot open the lock file {path}: {exc.strerror}",
            hint="run as root, or set data_dir to a directory you can write",
        ) from exc
    try:
        if not _try_flock(fd):
            with waiting() if waiting is not None else contextlib.nullcontext():
                _wait_flock(fd, path, what, timeout, while_waiting, busy, clock, sleep)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())  # for people wondering who holds it
        except OSError:
            pass
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _wait_flock(
    fd: int,
    path: Path,
    what: str,
    timeout: float | None,
    while_waiting: Callable[[], None] | None,
    busy: ConflictError | None,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> None:
    deadline = None if timeout is None else clock() + timeout
    while True:
        if while_waiting is not None:
            while_waiting()
        if deadline is not None and clock() >= deadline:
            raise busy or ConflictError(
                f"{what} is busy: another stagingvm command holds {path}",
                hint="wait for it to finish and try again",
            )
        sleep(POLL_INTERVAL)
        if _try_flock(fd):
            return


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


def image_lock(
    locks_dir: Path,
    recipe: str,
    *,
    timeout: float | None = None,
    waiting: Callable[[], AbstractLock] | None = None,
    busy: ConflictError | None = None,
) -> AbstractLock:
    """The lock of builds of recipe *recipe*'s image (validated: it becomes part of a path)."""
    validate_name(recipe, what="recipe name")
    return file_lock(
        locks_dir / f"image-{recipe}.lock",
        what=f"image {recipe}",
        timeout=timeout,
        waiting=waiting,
        busy=busy,
    )
