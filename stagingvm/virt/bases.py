"""Base images: read-only volumes in the pool that VM overlays are backed by.

A base called NAME lives in volume ``base-NAME-<id>.qcow2`` and is described by
``<data_dir>/bases/NAME.json`` (volume, format, size, source key). Importing again under the
same name makes a new volume and points the record at it, so running VMs keep the base their
overlay was made from; old volumes are deleted once no VM uses them. With a *source key*
(a nix store path, an image recipe hash) a second import of the same key is a no-op.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stagingvm.errors import BuildError, NotFoundError
from stagingvm.names import validate_name
from stagingvm.progress import NULL_PROGRESS, Progress
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
    path.parent.mkdir(parents=True, exist_ok=True)
    data = base.to_json()
    data.pop("reused")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{base.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)


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
) -> BaseImage:
    """Upload *image* (a self-contained qcow2 or raw, rewritten as a fresh qcow2) as *name*.

    *host_keys* (the image's SSH host keys, if known) go into the record with the volume. A
    reused import keeps the keys recorded with its volume: they describe that volume's disk.
    """
    import libvirt

    validate_name(name, what="base image name")
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
    storage.delete_volume(pool, vol_name)  # a torn earlier import of the same key
    tmp_root = data_dir / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tmp_root) as tmp:
        # Always rewritten: the volume is a fresh qcow2 that names no other file.
        upload = Path(tmp) / "base.qcow2"
        with progress.phase(f"writing {image.name} as a self-contained qcow2"):
            qemuimg.convert_to_qcow2(facts.path, facts.format, upload)
        with progress.phase(f"uploading {image.name} as base image {name}"):
            try:
                vol = storage.upload_file(conn, pool, vol_name, upload)
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
