"""Turn a root file system directory into a bootable qcow2 disk.

Layout: an MBR (syslinux's ``mbr.bin`` in the first 440 bytes, one active Linux
partition starting at 1 MiB) and one ext4 file system in that partition, made with
``mkfs.ext4 -d`` straight into the raw file at the partition's offset (no loop device,
no copy). extlinux is installed into the partition's ``/boot/extlinux`` through a loop
device (``losetup -o OFFSET``) that is always detached, then the raw file is converted
to qcow2. The BIOS (SeaBIOS under libvirt) loads mbr.bin, which chains to extlinux,
which boots the kernel with a serial console on ttyS0: no direct kernel boot needed, and
the same boot path for every image.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from stagingvm.images.buildenv import BuildContext, find_mbr_bin
from stagingvm.images.mounts import umount

SECTOR = 512
PART_OFFSET = 1024 * 1024  # first partition at 1 MiB, like every modern partitioner
EXTLINUX_DIR = "boot/extlinux"


def fs_uuid_for(content_hash: str) -> str:
    """A file system UUID derived from the recipe hash: same recipe, same UUID."""
    return str(uuid.UUID(hex=content_hash[:32]))


def extlinux_conf(kernel: str, initrd: str | None, cmdline: Sequence[str]) -> str:
    """extlinux.conf booting *kernel* at once, with the boot loader on the serial port."""
    lines = [
        "# written by stagingvm's image builder",
        "SERIAL 0 115200",
        "DEFAULT stagingvm",
        "PROMPT 0",
        "TIMEOUT 0",
        "LABEL stagingvm",
        f"  LINUX {kernel}",
    ]
    if initrd:
        lines.append(f"  INITRD {initrd}")
    lines.append("  APPEND " + " ".join(cmdline))
    return "\n".join(lines) + "\n"


def mbr_bytes(boot_code: bytes, *, start_lba: int, sectors: int, disk_id: int) -> bytes:
    """A 512-byte MBR: boot code, disk signature, one active type-0x83 partition."""
    if len(boot_code) > 440:
        boot_code = boot_code[:440]
    # CHS fields set to the "use LBA" values (0xFE 0xFF 0xFF); every BIOS since the
    # 1990s, SeaBIOS included, and syslinux's mbr.bin use the LBA fields.
    entry = struct.pack(
        "<B3sB3sII", 0x80, b"\xfe\xff\xff", 0x83, b"\xfe\xff\xff", start_lba, sectors
    )
    table = entry + bytes(16 * 3)
    mbr = boot_code.ljust(440, b"\0") + struct.pack("<IH", disk_id, 0) + table + b"\x55\xaa"
    assert len(mbr) == SECTOR
    return mbr


@contextlib.contextmanager
def loop_device(ctx: BuildContext, image: Path, offset: int, size: int) -> Iterator[str]:
    """Attach *image* (from *offset*, *size* bytes) to a free loop device; always detach."""
    dev = ctx.run(
        ["losetup", "-f", "--show", "-o", str(offset), "--sizelimit", str(size), str(image)],
        capture=True,
    ).strip()
    if not dev.startswith("/dev/loop"):
        raise ctx.fail(f"losetup printed {dev!r}, not a loop device")
    try:
        yield dev
    finally:
        ctx.run(["losetup", "-d", dev])


def assemble(
    ctx: BuildContext,
    rootfs: Path,
    out: Path,
    *,
    size_mb: int,
    kernel: str,
    initrd: str | None,
    cmdline: Sequence[str],
    label: str = "stagingvm-root",
) -> None:
    """Make *out* (qcow2) from *rootfs*: partitioned, ext4, extlinux, bootable by BIOS."""
    content_hash = ctx.recipe.content_hash()
    conf_dir = rootfs / EXTLINUX_DIR
    conf_dir.mkdir(parents=True, exist_ok=True)
    (conf_dir / "extlinux.conf").write_text(extlinux_conf(kernel, initrd, cmdline))

    raw = ctx.workdir / "disk.raw"
    total = size_mb * 1024 * 1024
    part_size = total - PART_OFFSET
    with raw.open("wb") as fh:
        fh.truncate(total)
    with ctx.progress.phase(f"making the ext4 file system ({size_mb} MiB)"):
        ctx.run(
            [
                "mkfs.ext4", "-q", "-F",
                "-L", label[:16], "-b", "4096",
                "-U", fs_uuid_for(content_hash),
                "-O", "^64bit,^metadata_csum_seed",
                "-E", f"offset={PART_OFFSET},root_owner=0:0",
                "-d", str(rootfs),
                str(raw), f"{part_size // 1024}k",
            ]
        )  # fmt: skip
    boot_code = find_mbr_bin().read_bytes()
    disk_id = int(content_hash[:8], 16)
    with raw.open("r+b") as fh:
        fh.write(
            mbr_bytes(
                boot_code,
                start_lba=PART_OFFSET // SECTOR,
                sectors=part_size // SECTOR,
                disk_id=disk_id,
            )
        )
    with ctx.progress.phase("installing the extlinux boot loader"):
        install_extlinux(ctx, raw, part_size)
    with ctx.progress.phase("converting to qcow2"):
        ctx.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(out)])
    raw.unlink()


def install_extlinux(ctx: BuildContext, raw: Path, part_size: int) -> None:
    """Mount the partition through a loop device and run ``extlinux --install``."""
    mnt = Path(tempfile.mkdtemp(prefix="mnt-", dir=ctx.workdir))
    with loop_device(ctx, raw, PART_OFFSET, part_size) as dev:
        ctx.run(["mount", "-t", "ext4", dev, str(mnt)])
        try:
            ctx.run(["extlinux", "--install", str(mnt / EXTLINUX_DIR)])
            os.sync()
        finally:
            umount(mnt)
    mnt.rmdir()
