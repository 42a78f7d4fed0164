"""Creating and deleting under the data dir without following symlinks.

Everything stagingvm creates under its data dir goes through here: every path component
below the data dir is opened with ``O_NOFOLLOW`` relative to its parent's descriptor, so a
symlink planted anywhere in the tree (``locks`` -> ``/etc``, ``vms/NAME`` -> ``/``) makes the
operation fail instead of writing or deleting outside. The data dir itself may be a symlink
(an administrator's choice); nothing below it may be.

**Shared mode.** A data dir that is setgid and group-writable (the NixOS module makes it
``2770 root:libvirtd``) is shared by the users of that group: the directories stagingvm makes
there are ``2770`` (setgid, so they stay in the group) and its files ``0660``, whoever ran
first. Private keys are never shared: each user's live in ``keys/users/<uid>/`` (``0700``,
files ``0600``), see :func:`user_keys_dir`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path, PurePath

from stagingvm.errors import ConfigError

PRIVATE_DIR = 0o700
SHARED_DIR = 0o2770
SHARED_FILE = 0o660
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def is_shared(data_dir: Path) -> bool:
    """Whether *data_dir* is a group-shared data dir (setgid and group-writable)."""
    try:
        mode = os.stat(data_dir).st_mode
    except OSError:
        return False
    return bool(mode & stat.S_ISGID) and bool(mode & stat.S_IWGRP)


def user_keys_dir(data_dir: Path) -> Path:
    """Where this user's private keys live: ``keys/`` alone, ``keys/users/<uid>/`` when shared."""
    keys = data_dir / "keys"
    return keys / "users" / str(os.getuid()) if is_shared(data_dir) else keys


def relative_parts(root: Path, path: Path) -> tuple[str, ...]:
    """The components of *path* below *root*; ConfigError if it is not below (or is ``..``)."""
    try:
        rel = PurePath(os.path.normpath(path)).relative_to(os.path.normpath(root))
    except ValueError:
        raise ConfigError(f"{path} is not inside the data dir {root}") from None
    parts = rel.parts
    if any(part in ("", ".", "..") for part in parts):
        raise ConfigError(f"{path} is not inside the data dir {root}")
    return parts


def _refuse(path: Path, exc: OSError) -> ConfigError:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return ConfigError(
            f"{path} is (or goes through) a symlink or not a directory: refusing to use it",
            hint="stagingvm follows no symlink below its data dir; remove the link",
        )
    # EEXIST: a directory was wanted where a file is.
    where = path if exc.errno == errno.EEXIST else path.parent
    return ConfigError(f"cannot use {path}: {exc.strerror}", hint=unwritable_dir_hint(where))


def unwritable_dir_hint(directory: Path) -> str:
    """What to do about a directory under data_dir that could not be made or written."""
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a directory: set data_dir (--data-dir) to a directory"
    return "run as root, or set data_dir to a directory you can write"


def _dir_mode(root: Path, private: bool) -> int:
    if private:
        return PRIVATE_DIR
    return SHARED_DIR if is_shared(root) else 0o755


@contextlib.contextmanager
def open_dir(
    root: Path, path: Path, *, create: bool = True, private: bool = False
) -> Iterator[int]:
    """A descriptor of directory *path* below *root*, each component opened without following
    symlinks (made when missing with *create*: mode 0755, 2770 shared, 0700 *private*)."""
    parts = relative_parts(root, path)
    mode = _dir_mode(root, private)
    try:
        if create:
            root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise _refuse(root, exc) from exc
    try:
        done = root
        for part in parts:
            done = done / part
            try:
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    made = True
                    try:
                        os.mkdir(part, mode, dir_fd=fd)
                    except FileExistsError:
                        made = False  # another process made it meanwhile
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                    if made:  # the umask may have taken the group's bits
                        with contextlib.suppress(OSError):
                            os.fchmod(child, mode)
            except OSError as exc:
                raise _refuse(done, exc) from exc
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def ensure_dir(root: Path, path: Path, *, private: bool = False) -> Path:
    """Make directory *path* below *root* (and its parents), following no symlink."""
    with open_dir(root, path, private=private):
        return path


def file_mode(root: Path, mode: int) -> int:
    """*mode* for a file made under *root*: group gets the owner's bits in a shared data dir
    (never for a file made 0600: private stays private)."""
    if mode & 0o077 == 0 or not is_shared(root):
        return mode
    return (mode | ((mode & 0o700) >> 3)) & 0o777


def open_file(root: Path, path: Path, flags: int, mode: int = 0o644) -> int:
    """``os.open`` of *path* below *root* with ``O_NOFOLLOW``, parents made as by ensure_dir.

    Only regular files: a FIFO, device or directory there is refused (ConfigError).
    """
    final = file_mode(root, mode)
    with open_dir(root, path.parent) as dir_fd:
        try:
            fd = os.open(
                path.name,
                flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                final,
                dir_fd=dir_fd,
            )
        except OSError as exc:
            raise _refuse(path, exc) from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise ConfigError(f"{path} is not a regular file: refusing to use it")
    if flags & os.O_CREAT and st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) != final:
        with contextlib.suppress(OSError):
            os.fchmod(fd, final)  # the umask may have taken the group's bits
    os.set_blocking(fd, True)
    return fd


def remove_tree(root: Path, path: Path) -> bool:
    """Delete *path* (file, directory tree or symlink itself) below *root*; False if absent.

    No symlink is followed on the way to it or inside it: a symlinked parent is refused
    (ConfigError), a symlink at *path* is removed as a link, its target left alone.
    """
    relative_parts(root, path)  # below root, and not root itself
    try:
        with open_dir(root, path.parent, create=False) as dir_fd:
            try:
                st = os.stat(path.name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                return False
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(path.name, dir_fd=dir_fd)
            else:
                os.unlink(path.name, dir_fd=dir_fd)
            return True
    except ConfigError as exc:
        if isinstance(exc.__cause__, FileNotFoundError):
            return False  # a parent is missing: nothing to delete
        raise
    except OSError as exc:
        raise _refuse(path, exc) from exc


def shared_umask(data_dir: Path) -> int | None:
    """Set the process umask to 007 when *data_dir* is shared (see the module doc); returns
    the old umask, or None when nothing was changed. Called once by the CLI."""
    if not is_shared(data_dir):
        return None
    return os.umask(0o007)
