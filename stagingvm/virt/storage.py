"""stagingvm's directory storage pool and its volumes (bases and per-VM overlays).

Every volume is made through libvirt's storage API, so stagingvm needs no write access to the
pool directory: overlays with ``virStorageVolCreateXML`` and a ``backingStore`` (libvirt runs
``qemu-img create -b BASE -F FORMAT``), base images by creating a volume and streaming the bytes
with ``virStorageVolUpload``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from stagingvm.errors import NotFoundError
from stagingvm.progress import NULL_PROGRESS, Progress
from stagingvm.virt import xmlrender
from stagingvm.virt.connection import lookup_or_none

if TYPE_CHECKING:
    import libvirt

CHUNK = 4 << 20
BASE_MODE = "0444"  # bases are read-only: QEMU only ever reads them through an overlay
OVERLAY_MODE = "0600"


def render_pool(name: str, path: Path) -> str:
    root = xmlrender.load_template("pool")
    xmlrender.set_text(root, "name", name)
    xmlrender.set_text(root, "target/path", str(path))
    return xmlrender.to_xml(root)


def render_volume(
    name: str,
    *,
    capacity: int,
    fmt: str,
    mode: str,
    backing_path: str | None = None,
    backing_format: str | None = None,
) -> str:
    """A volume from ``xml/volume.xml``; with *backing_path* an overlay on that volume."""
    root = xmlrender.load_template("volume")
    xmlrender.set_text(root, "name", name)
    xmlrender.set_text(root, "capacity", str(capacity))
    xmlrender.set_attrs(root, "target/format", type=fmt)
    xmlrender.set_text(root, "target/permissions/mode", mode)
    if backing_path is None:
        xmlrender.remove(root, "backingStore")
    else:
        xmlrender.set_text(root, "backingStore/path", backing_path)
        xmlrender.set_attrs(root, "backingStore/format", type=backing_format or "qcow2")
    return xmlrender.to_xml(root)


def pool_lookup(conn: libvirt.virConnect, name: str) -> libvirt.virStoragePool | None:
    return lookup_or_none(conn.storagePoolLookupByName, name, "VIR_ERR_NO_STORAGE_POOL")


def require_pool(conn: libvirt.virConnect, name: str) -> libvirt.virStoragePool:
    pool = pool_lookup(conn, name)
    if pool is None or not pool.isActive():
        raise NotFoundError(
            f"storage pool {name!r} does not exist or is not active",
            hint="`pr-test-vm build` or `pr-test-vm start` sets it up",
        )
    return pool


def ensure_pool(
    conn: libvirt.virConnect, name: str, path: Path, *, progress: Progress = NULL_PROGRESS
) -> list[str]:
    """Define (and build: mkdir) the pool if missing, start it if inactive, autostart it.

    Returns drift (an existing pool of that name pointing elsewhere), also sent to progress.
    """
    pool = pool_lookup(conn, name)
    differences: list[str] = []
    if pool is None:
        with progress.phase(f"defining storage pool {name}"):
            pool = conn.storagePoolDefineXML(render_pool(name, path), 0)
            pool.build(0)
    else:
        target = xmlrender.parse(pool.XMLDesc(0)).findtext("target/path")
        if target != str(path):
            differences.append(f"target path: wanted {path}, found {target}")
            progress.note(f"storage pool {name} differs from the settings: {differences[-1]}")
    if not pool.isActive():
        with progress.phase(f"starting storage pool {name}"):
            pool.create(0)
    if not pool.autostart():
        pool.setAutostart(1)
    return differences


def volume_lookup(pool: libvirt.virStoragePool, name: str) -> libvirt.virStorageVol | None:
    return lookup_or_none(pool.storageVolLookupByName, name, "VIR_ERR_NO_STORAGE_VOL")


def volume_names(pool: libvirt.virStoragePool) -> list[str]:
    return [str(name) for name in pool.listVolumes()]


def create_overlay(
    pool: libvirt.virStoragePool,
    name: str,
    *,
    backing: libvirt.virStorageVol,
    backing_format: str,
    capacity: int,
) -> libvirt.virStorageVol:
    """A qcow2 volume *name* whose backing store is *backing* (which stays untouched)."""
    xml = render_volume(
        name,
        capacity=capacity,
        fmt="qcow2",
        mode=OVERLAY_MODE,
        backing_path=str(backing.path()),
        backing_format=backing_format,
    )
    return pool.createXML(xml, 0)


def delete_volume(pool: libvirt.virStoragePool, name: str) -> bool:
    """Delete volume *name*; False if it did not exist."""
    vol = volume_lookup(pool, name)
    if vol is None:
        return False
    vol.delete(0)
    return True


def upload_file(
    conn: libvirt.virConnect,
    pool: libvirt.virStoragePool,
    name: str,
    source: Path,
    *,
    mode: str = BASE_MODE,
    on_chunk: Callable[[int], None] | None = None,
) -> libvirt.virStorageVol:
    """Create volume *name* and stream the bytes of *source* into it, unchanged.

    The volume is created as a raw file of exactly the source's size (libvirt would otherwise
    write a qcow2 header of its own), then overwritten by the upload. A failed upload deletes
    the volume again.
    """
    import libvirt

    size = source.stat().st_size
    vol = pool.createXML(render_volume(name, capacity=size, fmt="raw", mode=mode), 0)
    stream = conn.newStream(0)
    try:
        vol.upload(stream, 0, size, 0)
        sent = 0
        with source.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                view = memoryview(chunk)
                while view:
                    n = stream.send(bytes(view))
                    if n < 0:
                        raise OSError("libvirt stream refused data")
                    view = view[n:]
                sent += len(chunk)
                if on_chunk is not None:
                    on_chunk(sent)
        stream.finish()
    except BaseException:
        with contextlib.suppress(libvirt.libvirtError):
            stream.abort()
        with contextlib.suppress(libvirt.libvirtError):
            vol.delete(0)
        raise
    return vol


def volume_path(pool: libvirt.virStoragePool, name: str) -> str | None:
    vol = volume_lookup(pool, name)
    return None if vol is None else str(vol.path())


def backing_paths(pool: libvirt.virStoragePool) -> set[str]:
    """The backing files of the pool's volumes (the bases its overlays are made on)."""
    found = set()
    for name in volume_names(pool):
        vol = volume_lookup(pool, name)
        if vol is None:
            continue
        path = xmlrender.parse(vol.XMLDesc(0)).findtext("backingStore/path")
        if path:
            found.add(path)
    return found
