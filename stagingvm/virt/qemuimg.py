"""What ``qemu-img`` says about a disk image, and rewriting images as self-contained qcow2.

The format of an image the user hands us is read from its bytes by stagingvm itself
(``stagingvm.virt.imageformat``), never probed by QEMU and never guessed from its file name:
an image that names other files (a backing file, a qcow2 ``data-file``, vmdk extents) or a
``json:``/protocol filename is refused before any QEMU tool opens it. Every ``qemu-img`` call
then gets the format explicitly (``-f``), and ``qemu-img info`` must agree that nothing else
is referenced.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from stagingvm.errors import InvalidInputError, ToolMissingError
from stagingvm.virt import imageformat

SUPPORTED_FORMATS = ("qcow2", "raw")


@dataclass(frozen=True)
class ImageFacts:
    format: str
    virtual_size: int
    actual_size: int
    backing_file: str | None
    path: Path  # resolved: the file every later step opens


def _qemu_img() -> str:
    path = shutil.which("qemu-img")
    if path is None:
        raise ToolMissingError(
            "qemu-img is not installed", hint="install it: `apt-get install qemu-utils`"
        )
    return path


def inspect(image: Path) -> ImageFacts:
    """Facts of *image*; InvalidInputError for anything but a self-contained qcow2 or raw."""
    path = imageformat.open_regular(image)
    fmt = imageformat.detect(path)
    proc = subprocess.run(
        [_qemu_img(), "info", "-f", fmt, "--output=json", "--", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise InvalidInputError(
            f"qemu-img cannot read {image}: {proc.stderr.strip() or proc.returncode}"
        )
    info = json.loads(proc.stdout)
    data = (info.get("format-specific") or {}).get("data") or {}
    facts = ImageFacts(
        format=str(info.get("format")),
        virtual_size=int(info.get("virtual-size", 0)),
        actual_size=int(info.get("actual-size", 0)),
        backing_file=info.get("full-backing-filename") or info.get("backing-filename"),
        path=path,
    )
    if facts.format != fmt:
        raise InvalidInputError(f"image {image}: qemu-img reads it as {facts.format}, not {fmt}")
    if facts.backing_file:
        raise InvalidInputError(f"image {image} has a backing file ({facts.backing_file})")
    if data.get("data-file"):
        raise InvalidInputError(
            f"image {image} keeps its data in an external file (qcow2 data-file): not accepted"
        )
    if facts.virtual_size <= 0:
        raise InvalidInputError(f"image {image} is empty")
    return facts


def convert_to_qcow2(source: Path, fmt: str, dest: Path) -> None:
    """Write *source* (of format *fmt*, given explicitly) as a fresh, self-contained qcow2."""
    if fmt not in SUPPORTED_FORMATS:
        raise InvalidInputError(f"cannot convert a {fmt} image")
    proc = subprocess.run(
        [_qemu_img(), "convert", "-f", fmt, "-O", "qcow2", "--", str(source), str(dest)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise InvalidInputError(f"qemu-img could not convert {source}: {proc.stderr.strip()}")
