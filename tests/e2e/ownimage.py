"""A bootable guest disk made by the test suite's own code, not by stagingvm's image builder.

It starts from a plain Debian root file system the harness keeps (``e2e-lab-rootfs``:
debootstrap plus systemd, sshd, sudo, docker.io, curl, python3; its ``rootfs.tar.zst``) and
does everything else itself, with none of ``stagingvm.images``: the restricted user, how its
key arrives (a systemd credential read by tmpfiles), fresh SSH host keys (nothing pinned: the
host learns them on first contact), an MBR of its own, ext4, extlinux, qcow2.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import uuid
from pathlib import Path

MIB = 1024 * 1024
MBR_BIN = Path("/usr/lib/syslinux/mbr/mbr.bin")
TAR_FLAGS = ["--xattrs", "--xattrs-include=*", "--acls", "--numeric-owner"]


def sh(*argv: str | Path) -> str:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def mbr(boot_code: bytes, *, sectors: int) -> bytes:
    """Boot code, a disk signature and one active Linux partition from sector 2048 on."""
    chs = b"\xfe\xff\xff"  # "use LBA"
    entry = struct.pack("<B3sB3sII", 0x80, chs, 0x83, chs, MIB // 512, sectors)
    sig = struct.pack("<IH", 0x0E2E1A6E, 0)
    return boot_code[:440].ljust(440, b"\0") + sig + entry + bytes(48) + b"\x55\xaa"


def make_disk(
    rootfs_tar: Path, work: Path, *, user: str, groups: tuple[str, ...], credential: str,
    size_mb: int = 4096,
) -> Path:  # fmt: skip
    """``work/disk.qcow2``: *user* in *groups*, its authorized_keys from *credential*."""
    root = work / "root"
    root.mkdir(parents=True)
    try:
        sh("tar", "--zstd", "-xpf", rootfs_tar, "-C", root, *TAR_FLAGS)
        sh("chroot", root, "useradd", "--create-home", "--shell", "/bin/bash", "--user-group",
           "--groups", ",".join(groups), user)  # fmt: skip
        (root / "etc/tmpfiles.d/own-image-keys.conf").write_text(
            f"d /home/{user}/.ssh 0700 {user} {user} -\n"
            f"f^ /home/{user}/.ssh/authorized_keys 0600 {user} {user} - {credential}\n"
        )
        dropin = root / "etc/systemd/system/systemd-tmpfiles-setup.service.d/own-image.conf"
        dropin.parent.mkdir(parents=True, exist_ok=True)
        dropin.write_text(f"[Service]\nLoadCredential={credential}\n")
        for key in (root / "etc/ssh").glob("ssh_host_*"):
            key.unlink()
        sh("chroot", root, "ssh-keygen", "-A")
        fs_uuid = str(uuid.uuid4())
        (root / "etc/fstab").write_text(f"UUID={fs_uuid} / ext4 rw 0 1\n")
        kernel = sorted((root / "boot").glob("vmlinuz-*"))[-1].name
        initrd = "initrd.img-" + kernel.removeprefix("vmlinuz-")
        conf = root / "boot/extlinux/extlinux.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(
            "SERIAL 0 115200\nDEFAULT own\nPROMPT 0\nTIMEOUT 0\nLABEL own\n"
            f"  LINUX /boot/{kernel}\n  INITRD /boot/{initrd}\n"
            f"  APPEND root=UUID={fs_uuid} rw console=ttyS0,115200 panic=1 apparmor=0\n"
        )
        raw = work / "disk.raw"
        with raw.open("wb") as fh:
            fh.truncate(size_mb * MIB)
        part = size_mb * MIB - MIB
        sh("mkfs.ext4", "-q", "-F", "-U", fs_uuid, "-O", "^64bit", "-E",
           f"offset={MIB},root_owner=0:0", "-d", root, raw, f"{part // 1024}k")  # fmt: skip
        loop = sh("losetup", "-f", "--show", "-o", str(MIB), "--sizelimit", str(part), raw).strip()
        mnt = work / "mnt"
        mnt.mkdir()
        try:
            sh("mount", loop, mnt)
            try:
                sh("extlinux", "--install", mnt / "boot/extlinux")
            finally:
                sh("umount", mnt)
        finally:
            sh("losetup", "-d", loop)
        with raw.open("r+b") as fh:
            fh.write(mbr(MBR_BIN.read_bytes(), sectors=part // 512))
        disk = work / "disk.qcow2"
        sh("qemu-img", "convert", "-O", "qcow2", raw, disk)
        raw.unlink()
        return disk
    finally:
        shutil.rmtree(root, ignore_errors=True)
