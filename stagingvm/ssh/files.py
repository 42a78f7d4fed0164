"""Small files that must never be seen half-written or with loose permissions.

Keys and known_hosts files are written to a temporary name, created with their final mode
from the first byte (``os.open`` with the mode, then ``fchmod`` against a permissive umask),
synced, then moved into place. Temporary names are unique per call, so threads and processes
writing at the same time never share one.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def ensure_private_dir(directory: Path) -> None:
    """Create *directory* (and parents) with mode 0700; an existing one is left alone."""
    if directory.is_dir():
        return
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)


def write_atomic(path: Path, data: bytes, *, mode: int, keep_existing: bool = False) -> bool:
    """Write *data* to *path* with *mode*, atomically; returns whether *path* was written.

    With *keep_existing*, an existing *path* wins (the file is hard-linked into place, which
    fails if another writer got there first): used for keys, where the first one made stays.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        try:
            os.fchmod(fd, mode)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if not keep_existing:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)
