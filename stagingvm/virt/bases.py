"""Base images: read-only volumes in the pool that VM overlays are backed by.

A base called NAME lives in volume ``base-NAME-<id>.qcow2`` and is described by
``<data_dir>/bases/NAME.json`` (volume, format, size, source key). Importing again under the
same name makes a new volume and points the record at it, so running VMs keep the base their
overlay was made from; old volumes are deleted once no VM uses them. With a *source key*
(a nix store path, an image recipe hash) a second import of the same key is a no-op.

Races (see ``stagingvm.locks``): an import holds the import lock of its name and an
exclusive lock on the volume it uploads into, never the host-wide lock; a start holds its
base volume's lock shared (:func:`in_use`) until its domain is defined, and from then on the
domain's metadata names the volume. :func:`prune` deletes an old volume only with its lock
taken exclusively at once, and only if no domain names it and no overlay is backed by it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stagingvm import datadir, locks
from stagingvm.errors import BuildError, ConflictError, NotFoundError
from stagingvm.names import validate_name
from stagingvm.progress import NULL_PROGRESS, Progress, transfer
from stagingvm.virt import domain as vdomain
from stagingvm.virt import qemuimg, storage

if TYPE_CHECKING:
    import libvirt

BASE_PREFIX = "base-"


@dataclass(frozen=True)
class BaseImage:
    name: str
    volume: str
    path: str
    format: str
    virtual_size: int
    source: str
    source_key: str | None
    imported_at: str
    host_keys: tuple[str, ...] = ()
    """The guest's SSH host keys (``KEYTYPE BASE64``) when its builder recorded them: a VM
    of this base has them pinned before it first runs (see ``stagingvm.vm.hostkeys``)."""
    reused: bool = False

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def bases_dir(data_dir: Path) -> Path:
    return data_dir / "bases"


def record_path(data_dir: Path, name: str) -> Path:
    return bases_dir(data_dir) / f"{validate_name(name, what='base image name')}.json"


def read_record(data_dir: Path, name: str) -> BaseImage | None:
    path = record_path(data_dir, name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # a torn or foreign file: treat the base as not imported
    if not isinstance(data, dict):
        return None
    required = {f.name for f in dataclasses.fields(BaseImage)} - {"reused", "host_keys"}
    if not required <= data.keys():
        return None
    host_keys = data.get("host_keys", [])  # absent in records written before it existed
    if not isinstance(host_keys, list) or not all(isinstance(k, str) for k in host_keys):
        return None
    return BaseImage(**{key: data[key] for key in required}, host_keys=tuple(host_keys))


def write_record(data_dir: Path, base: BaseImage) -> None:
    """Write the record atomically (temp file + rename): readers never see half a file."""
    path = record_path(data_dir, base.name)
    data = base.to_json()
    data.pop("reused")
    tmp = path.with_name(f".{base.name}.{secrets.token_hex(6)}.tmp")
    fd = datadir.open_file(data_dir, tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
        with datadir.open_dir(data_dir, path.parent) as dir_fd:
            os.replace(tmp.name, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    finally:
        datadir.remove_tree(data_dir, tmp)


def volume_name(name: str, source_key: str | None) -> str:
    suffix = (
        hashlib.sha256(source_key.encode()).hexdigest()[:12]
        if source_key is not None
        else secrets.token_hex(6)
    )
    return f"{BASE_PREFIX}{name}-{suffix}.qcow2"


def resolve(pool: libvirt.virStoragePool, data_dir: Path, name: str) -> BaseImage:
    """The imported base *name*; NotFoundError if it was never imported or its volume is gone."""
    record = read_record(data_dir, name)
    if record is None or storage.volume_lookup(pool, record.volume) is None:
        raise NotFoundError(
            f"no base image {name!r}",
            hint=f"import one first: `pr-test-vm build --image DISK.qcow2 --name {name}`",
        )
    return record


@contextlib.contextmanager
def in_use(
    pool: libvirt.virStoragePool, data_dir: Path, name: str, *, timeout: float = 120.0
) -> Iterator[BaseImage]:
    """The base *name*, its volume kept from deletion (lock held shared) while inside.

    A re-import may retire the volume between reading the record and taking its lock: then
    the record is read again (it names the new volume).
    """
    for _attempt in range(3):
        record = resolve(pool, data_dir, name)
        with locks.volume_lock(
            locks.locks_dir_of(data_dir), record.volume, shared=True, timeout=timeout
        ):
            if storage.volume_lookup(pool, record.volume) is not None:
                yield record
                return
    raise ConflictError(
        f"base image {name!r} kept changing while a VM was being made from it",
        hint="wait for the imports of that base to finish and try again",
    )


def import_base(
    conn: libvirt.virConnect,
    pool: libvirt.virStoragePool,
    data_dir: Path,
    image: Path,
    name: str,
    *,
    source_key: str | None = None,
    host_keys: tuple[str, ...] = (),
    progress: Progress = NULL_PROGRESS,
    timeout: float = 3600.0,
) -> BaseImage:
    """Upload *image* (a self-contained qcow2 or raw, rewritten as a fresh qcow2) as *name*.

    *host_keys* (the image's SSH host keys, if known) go into the record with the volume. A
    reused import keeps the keys recorded with its volume: they describe that volume's disk.
    Old volumes of *name* are pruned afterwards. Holds the import lock of *name* (waiting up
    to *timeout* for another import of it), never the host-wide lock.
    """
    validate_name(name, what="base image name")
    with locks.import_lock(locks.locks_dir_of(data_dir), name, timeout=timeout):
        base = _import_locked(
            conn,
            pool,
            data_dir,
            image,
            name,
            source_key=source_key,
            host_keys=host_keys,
            progress=progress,
        )
        if not base.reused:
            prune(conn, pool, data_dir, name)
        return base


def _import_locked(
    conn: libvirt.virConnect,
    pool: libvirt.virStoragePool,
    data_dir: Path,
    image: Path,
    name: str,
    *,
    source_key: str | None,
    host_keys: tuple[str, ...],
    progress: Progress,
) -> BaseImage:
    import libvirt

    if source_key is not None:
        known = read_record(data_dir, name)
        if (
            known is not None
            and known.source_key == source_key
            and storage.volume_lookup(pool, known.volume) is not None
        ):
            return dataclasses.replace(known, reused=True)
    facts = qemuimg.inspect(image)
    vol_name = volume_name(name, source_key)
    with (
        locks.volume_lock(locks.locks_dir_of(data_dir), vol_name, shared=False, timeout=0),
        _import_tmp(data_dir, name) as tmp,
    ):
        storage.delete_volume(pool, vol_name)  # a torn earlier import of the same key
        # Always rewritten: the volume is a fresh qcow2 that names no other file.
        upload = tmp / "base.qcow2"
        with progress.phase(f"writing {image.name} as a self-contained qcow2"):
            qemuimg.convert_to_qcow2(facts.path, facts.format, upload)
        what = f"uploading {image.name} as base image {name}"
        with transfer(progress, what, upload.stat().st_size) as advance:
            try:
                vol = storage.upload_file(conn, pool, vol_name, upload, on_chunk=advance)
            except libvirt.libvirtError as exc:
                raise BuildError(
                    f"could not upload {image} into storage pool {pool.name()}: {exc}"
                ) from exc
    base = BaseImage(
        name=name,
        volume=vol_name,
        path=str(vol.path()),
        format="qcow2",
        virtual_size=facts.virtual_size,
        source=str(image.resolve()),
        source_key=source_key,
        imported_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        host_keys=host_keys,
    )
    try:
        write_record(data_dir, base)
    except BaseException:
        with contextlib.suppress(Exception):
            storage.delete_volume(pool, vol_name)
        raise
    return base


def tmp_dir(data_dir: Path) -> Path:
    """Where imports keep their temporary files: ``<data_dir>/tmp/NAME.XXXX/``."""
    return data_dir / "tmp"


@contextlib.contextmanager
def _import_tmp(data_dir: Path, name: str) -> Iterator[Path]:
    """A fresh ``tmp/NAME.XXXX`` directory, deleted afterwards (``gc`` deletes one a killed
    import left: its import lock is free)."""
    root = datadir.ensure_dir(data_dir, tmp_dir(data_dir))
    path = Path(tempfile.mkdtemp(prefix=f"{name}.", dir=root))
    try:
        yield path
    finally:
        datadir.remove_tree(data_dir, path)


def tmp_owner(entry: str) -> str | None:
    """The base name a ``tmp/`` entry belongs to (``NAME.XXXX``), None if not one of ours."""
    name, dot, _rest = entry.partition(".")
    return name if dot and _valid_name(name) else None


def _valid_name(name: str) -> bool:
    try:
        validate_name(name)
    except Exception:
        return False
    return True


def in_use_volumes(conn: libvirt.virConnect, pool: libvirt.virStoragePool) -> set[str]:
    """Base volumes a domain names in its metadata or an overlay in the pool is backed by."""
    used = {
        found.metadata.base_volume
        for _dom, found in vdomain.owned_domains(conn)
        if found.metadata is not None
    }
    by_path = {storage.volume_path(pool, vol): vol for vol in storage.volume_names(pool)}
    for backing in storage.backing_paths(pool):
        if backing in by_path:
            used.add(by_path[backing])
    return used


def prune(
    conn: libvirt.virConnect, pool: libvirt.virStoragePool, data_dir: Path, name: str
) -> list[str]:
    """Delete the old volumes of base *name* that nothing uses; returns those deleted."""
    return [
        vol
        for vol in stale_volumes(pool, data_dir, name)
        if delete_if_unused(conn, pool, data_dir, vol)
    ]


def delete_if_unused(
    conn: libvirt.virConnect, pool: libvirt.virStoragePool, data_dir: Path, volume: str
) -> bool:
    """Delete base *volume* if its lock can be had at once and nothing uses it."""
    try:
        with locks.volume_lock(locks.locks_dir_of(data_dir), volume, shared=False, timeout=0):
            if volume in in_use_volumes(conn, pool) or volume in current_volumes(data_dir):
                return False
            return storage.delete_volume(pool, volume)
    except ConflictError:
        return False  # a start is making a VM from it, or an upload is writing it


def current_volumes(data_dir: Path) -> set[str]:
    """The volumes the base records point at."""
    found = set()
    with contextlib.suppress(OSError):
        for path in bases_dir(data_dir).glob("*.json"):
            record = read_record(data_dir, path.stem) if _valid_name(path.stem) else None
            if record is not None:
                found.add(record.volume)
    return found


def stale_volumes(pool: libvirt.virStoragePool, data_dir: Path, name: str) -> list[str]:
    """Volumes of base *name* other than the current one (candidates for deletion)."""
    record = read_record(data_dir, name)
    current = record.volume if record is not None else None
    prefix = f"{BASE_PREFIX}{name}-"
    return [
        vol
        for vol in storage.volume_names(pool)
        if vol.startswith(prefix)
        and vol != current
        and _is_suffix(vol[len(prefix) :])  # not the volumes of a base called "NAME-x"
    ]


def _is_suffix(rest: str) -> bool:
    stem = rest.removesuffix(".qcow2")
    hexdigits = "0123456789abcdef"
    return rest.endswith(".qcow2") and len(stem) == 12 and all(c in hexdigits for c in stem)
