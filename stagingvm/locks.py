"""File locks that make concurrent stagingvm invocations safe on one host.

All are ``flock`` locks on files in ``<data_dir>/locks/`` (released by the kernel when a
process dies, so a crash never leaves a stale lock), opened without following symlinks
(``stagingvm.datadir``):
- the *host lock* around shared set-up: the network, the pool, DHCP host entries (held briefly);
- one *VM lock* per name around each lifecycle verb (start, stop, destroy, rebuild);
- one *import lock* per base name around an import (the upload can take minutes: it holds
  no host-wide lock, so starts of other VMs go on meanwhile);
- one *volume lock* per base volume: held shared by a start from reading the base's record
  until its domain is defined, exclusively by an upload into it and by whoever deletes it
  (pruning after a re-import, ``gc``), which skips a volume it cannot lock at once.
- one *image lock* per recipe around a build of its image (and its removal).
``file_lock`` is also the lock of other shared files (e.g. a known_hosts file).
Order: a VM lock, then an import lock, then a volume lock, then (briefly) the host lock.
``flock`` locks belong to an open file, so two threads of one process exclude each other too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from stagingvm import datadir
from stagingvm.errors import ConfigError, ConflictError, InvalidInputError
from stagingvm.names import validate_name

DEFAULT_TIMEOUT = 120.0

AbstractLock = contextlib.AbstractContextManager[None]
POLL_INTERVAL = 0.1
VOLUME_RE = re.compile(r"[a-z0-9][a-z0-9.-]{0,250}")


def locks_dir_of(data_dir: Path) -> Path:
    """``<data_dir>/locks`` (``Settings.locks_dir``), for code that has only the data dir."""
    return data_dir / "locks"


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
    shared: bool = False,
) -> Iterator[None]:
    """Hold an exclusive (or *shared*) lock on *path*; *busy* (default: ConflictError "busy") after
    *timeout* seconds (None: wait as long as it takes; 0: one try).

    *while_waiting* runs between attempts and may raise to give up early (e.g. "already
    exists" once the lock holder has created what we wanted to create); *waiting* makes a
    context (e.g. a progress phase) held while the lock is busy. The lock file is opened below
    ``path.parent.parent`` without following symlinks; it is never anything but a regular file,
    and a shared lock never truncates it.
    """
    fd = _open_lock_file(path, mode)
    try:
        if not _try_flock(fd, shared):
            with waiting() if waiting is not None else contextlib.nullcontext():
                _wait_flock(fd, shared, path, what, timeout, while_waiting, busy, clock, sleep)
        if not shared:
            with contextlib.suppress(OSError):  # for people wondering who holds it
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def _try_flock(fd: int, shared: bool) -> bool:
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _wait_flock(
    fd: int,
    shared: bool,
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
        if _try_flock(fd, shared):
            return


def _open_lock_file(path: Path, mode: int = 0o644) -> int:
    try:
        flags = os.O_RDWR | os.O_CREAT
        return datadir.open_file(path.parent.parent, path, flags, mode)
    except ConfigError as exc:
        raise ConfigError(
            f"cannot open the lock file {path}: {exc}",
            hint=exc.hint,
        ) from exc


def is_held(path: Path) -> bool:
    """Whether some process holds a lock on *path* now (False if the file does not exist)."""
    if not path.exists():
        return False
    try:
        with file_lock(path, what=str(path), timeout=0):
            return False
    except ConflictError:
        return True


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
    return file_lock(
        vm_lock_path(locks_dir, name),
        what=f"VM {name}",
        timeout=timeout,
        while_waiting=while_waiting,
    )


def import_lock(locks_dir: Path, name: str, *, timeout: float = DEFAULT_TIMEOUT) -> AbstractLock:
    """The lock of imports of base *name* (one upload of a name at a time)."""
    validate_name(name, what="base image name")
    return file_lock(
        import_lock_path(locks_dir, name), what=f"the import of base {name}", timeout=timeout
    )


def import_lock_path(locks_dir: Path, name: str) -> Path:
    return locks_dir / f"import-{name}.lock"


def volume_lock(
    locks_dir: Path, volume: str, *, shared: bool, timeout: float = DEFAULT_TIMEOUT
) -> AbstractLock:
    """The lock of base volume *volume*: shared while a start uses it, exclusive to delete it."""
    if VOLUME_RE.fullmatch(volume) is None:
        raise InvalidInputError(f"invalid base volume name {volume!r}")
    return file_lock(
        volume_lock_path(locks_dir, volume),
        what=f"base volume {volume}",
        timeout=timeout,
        shared=shared,
    )


def volume_lock_path(locks_dir: Path, volume: str) -> Path:
    return locks_dir / f"volume-{volume}.lock"


def vm_lock_path(locks_dir: Path, name: str) -> Path:
    return locks_dir / f"vm-{validate_name(name)}.lock"


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
