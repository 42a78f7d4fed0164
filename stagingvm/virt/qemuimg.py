"""What ``qemu-img`` says about a disk image, and converting raw images to qcow2.

The format of an image the user hands us is detected, never guessed from its file name:
a raw file that happens to start like a qcow2 header is exactly what image probing must not
trust, so ``qemu-img info`` decides once, at import, and the format is recorded from then on.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from stagingvm.errors import InvalidInputError, ToolMissingError

SUPPORTED_FORMATS = ("qcow2", "raw")


@dataclass(frozen=True)
class ImageFacts:
    format: str
    virtual_size: int
    actual_size: int
    backing_file: str | None


def _qemu_img() -> str:
    path = shutil.which("qemu-img")
    if path is None:
        raise ToolMissingError(
            "qemu-img is not installed", hint="install it: `apt-get install qemu-utils`"
        )
    return path


def inspect(image: Path) -> ImageFacts:
    """``qemu-img info`` of *image*; InvalidInputError for anything but a plain qcow2 or raw."""
    if not image.is_file():
        raise InvalidInputError(f"image {image} is not a file")
    proc = subprocess.run(
        [_qemu_img(), "info", "--output=json", "--", str(image)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise InvalidInputError(
            f"qemu-img cannot read {image}: {proc.stderr.strip() or proc.returncode}"
        )
    info = json.loads(proc.stdout)
    facts = ImageFacts(
        format=str(info.get("format")),
        virtual_size=int(info.get("virtual-size", 0)),
        actual_size=int(info.get("actual-size", 0)),
        backing_file=info.get("full-backing-filename") or info.get("backing-filename"),
    )
    if facts.format not in SUPPORTED_FORMATS:
        raise InvalidInputError(
            f"image {image} is {facts.format}, not qcow2 or raw",
            hint=f"convert it: `qemu-img convert -O qcow2 {image} OUT.qcow2`",
        )
    if facts.backing_file:
        raise InvalidInputError(
            f"image {image} has a backing file ({facts.backing_file})",
            hint=f"flatten it first: `qemu-img convert -O qcow2 {image} OUT.qcow2`",
        )
    if facts.virtual_size <= 0:
        raise InvalidInputError(f"image {image} is empty")
    return facts


def convert_to_qcow2(source: Path, dest: Path) -> None:
    """Write *source* (raw) as a compact qcow2 *dest*: a raw upload would send every zero."""
    proc = subprocess.run(
        [_qemu_img(), "convert", "-f", "raw", "-O", "qcow2", "--", str(source), str(dest)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise InvalidInputError(f"qemu-img could not convert {source}: {proc.stderr.strip()}")
