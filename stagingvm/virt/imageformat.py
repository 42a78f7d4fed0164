"""What kind of disk image a file is, read from its bytes by stagingvm itself.

QEMU's own format probing is exactly what an untrusted image must not get: a file that says
"I am a vmdk with an extent at /etc/shadow" or "a qcow2 whose data lives in /dev/sda" makes
``qemu-img`` or QEMU open that host path. So stagingvm reads the magic numbers itself
(those of every format QEMU's block drivers probe), accepts only qcow2 and raw, and for a
qcow2 reads the header: no backing file, no external data file (incompatible feature bit 2
or the data-file header extension), no encryption. The format found here is then passed
explicitly (``-f``) to every ``qemu-img`` call, and the import rewrites the image as a fresh,
self-contained qcow2.
"""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path

from stagingvm.errors import InvalidInputError

QCOW2_MAGIC = b"QFI\xfb"
_DATA_FILE_EXT = 0x44415441
_EXTERNAL_DATA_BIT = 1 << 2

# Magic numbers of the formats QEMU probes (block/*.c probe functions), by offset.
_OTHER_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"QED\x00", "qed"),
    (0, b"KDMV", "vmdk"),
    (0, b"COWD", "vmdk"),
    (0, b"# Disk DescriptorFile", "vmdk"),
    (0, b"# Disk Descriptor File", "vmdk"),
    (0, b"vhdxfile", "vhdx"),
    (0, b"conectix", "vpc"),
    (0, b"WithoutFreeSpace", "parallels"),
    (0, b"WithouFreSpacExt", "parallels"),
    (0, b"LUKS\xba\xbe", "luks"),
    (0, b"Bochs Virtual HD Image", "bochs"),
    (0, b"#!/bin/sh\n#V2.0 Format", "cloop"),
    (0x40, b"\x7f\x10\xda\xbe", "vdi"),
)


def open_regular(path: Path) -> Path:
    """*path* resolved, if it is a plain local regular file (symlinks are followed once)."""
    text = str(path)
    if text.startswith("json:") or (":" in text.split("/", 1)[0] and not text.startswith("/")):
        raise InvalidInputError(f"image {path}: only a plain local file path is accepted")
    resolved = path.resolve()
    try:
        st = os.stat(resolved)
    except OSError as exc:
        raise InvalidInputError(f"image {path} is not a file: {exc.strerror}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise InvalidInputError(f"image {path} is not a regular file")
    return resolved


def detect(path: Path) -> str:
    """``qcow2`` or ``raw`` for *path* (a resolved regular file); InvalidInputError otherwise."""
    with path.open("rb") as fh:
        head = fh.read(4096)
        size = fh.seek(0, os.SEEK_END)
        tail = b""
        if size >= 512:
            fh.seek(size - 512)
            tail = fh.read(512)
    if head.startswith(QCOW2_MAGIC):
        _check_qcow2(path, head)
        return "qcow2"
    for offset, magic, name in _OTHER_MAGIC:
        if head[offset : offset + len(magic)] == magic:
            raise _refused(path, name)
    if tail.startswith(b"conectix"):
        raise _refused(path, "vpc")
    if tail.startswith(b"koly"):
        raise _refused(path, "dmg")
    return "raw"


def _refused(path: Path, fmt: str) -> InvalidInputError:
    return InvalidInputError(
        f"image {path} is {fmt}: only qcow2 and raw images are accepted",
        hint="convert it on a machine you trust: `qemu-img convert -f FORMAT -O qcow2 IN OUT`",
    )


def _check_qcow2(path: Path, head: bytes) -> None:
    if len(head) < 72:
        raise InvalidInputError(f"image {path}: truncated qcow2 header")
    version, backing_offset, backing_size = struct.unpack(">IQI", head[4:20])
    crypt = struct.unpack(">I", head[32:36])[0]
    if version not in (2, 3):
        raise InvalidInputError(f"image {path}: qcow2 version {version} is not accepted")
    if backing_offset or backing_size:
        raise InvalidInputError(
            f"image {path} has a backing file",
            hint=f"flatten it first: `qemu-img convert -f qcow2 -O qcow2 {path} OUT.qcow2`",
        )
    if crypt:
        raise InvalidInputError(f"image {path} is encrypted: not accepted")
    if version == 2:
        header_length = 72
    else:
        if len(head) < 104:
            raise InvalidInputError(f"image {path}: truncated qcow2 header")
        incompatible = struct.unpack(">Q", head[72:80])[0]
        if incompatible & _EXTERNAL_DATA_BIT:
            raise _external_data(path)
        header_length = struct.unpack(">I", head[100:104])[0]
    at = header_length
    while at + 8 <= len(head):
        kind, length = struct.unpack(">II", head[at : at + 8])
        if kind == 0:
            return
        if kind == _DATA_FILE_EXT:
            raise _external_data(path)
        at += 8 + ((length + 7) & ~7)


def _external_data(path: Path) -> InvalidInputError:
    return InvalidInputError(
        f"image {path} keeps its data in an external file (qcow2 data-file): not accepted",
        hint=f"make it self-contained: `qemu-img convert -f qcow2 -O qcow2 {path} OUT.qcow2`",
    )
