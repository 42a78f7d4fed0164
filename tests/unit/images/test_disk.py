"""Disk layout pieces that can be checked without root: the MBR, extlinux.conf, credentials."""

from __future__ import annotations

import struct

from stagingvm.images.disk import PART_OFFSET, SECTOR, extlinux_conf, fs_uuid_for, mbr_bytes
from stagingvm.images.recipe import UserSpec
from stagingvm.images.rootfs import credential_files


def test_mbr_has_boot_code_one_active_linux_partition_and_signature() -> None:
    code = bytes(range(256)) * 2  # 512 bytes: only the first 440 may be used
    mbr = mbr_bytes(code, start_lba=2048, sectors=100_000, disk_id=0x12345678)
    assert len(mbr) == SECTOR and mbr[510:] == b"\x55\xaa"
    assert mbr[:440] == code[:440]
    assert struct.unpack_from("<I", mbr, 440)[0] == 0x12345678
    status, ptype = mbr[446], mbr[450]
    start, count = struct.unpack_from("<II", mbr, 454)
    assert (status, ptype, start, count) == (0x80, 0x83, 2048, 100_000)
    assert mbr[462:510] == bytes(48), "only one partition"
    assert PART_OFFSET == 2048 * SECTOR


def test_extlinux_conf_boots_at_once_on_the_serial_console() -> None:
    conf = extlinux_conf("/boot/vmlinuz", "/boot/initrd.img", ["console=ttyS0,115200", "panic=1"])
    lines = [line.strip() for line in conf.splitlines()]
    assert "SERIAL 0 115200" in lines and "PROMPT 0" in lines and "TIMEOUT 0" in lines
    assert "LINUX /boot/vmlinuz" in lines and "INITRD /boot/initrd.img" in lines
    assert "APPEND console=ttyS0,115200 panic=1" in lines
    assert "INITRD" not in extlinux_conf("/boot/vmlinuz", None, [])


def test_fs_uuid_is_derived_from_the_recipe_hash() -> None:
    h = "1e30f265381efc5b04a40c329d08f1f6c26b2613953b1a3fde2f12962a99b88b"
    assert fs_uuid_for(h) == "1e30f265-381e-fc5b-04a4-0c329d08f1f6"


def test_credential_files_write_each_users_key_from_its_credential() -> None:
    files = credential_files((UserSpec("ai-worker"), UserSpec("nokey", ssh_credential=False)))
    assert files is not None
    rules, dropin = files
    assert "d /home/ai-worker/.ssh 0700 ai-worker ai-worker -" in rules.splitlines()
    assert (
        "f^ /home/ai-worker/.ssh/authorized_keys 0600 ai-worker ai-worker - "
        "stagingvm.authorized_keys.ai-worker"
    ) in rules.splitlines()
    assert "nokey" not in rules
    assert dropin == "[Service]\nLoadCredential=stagingvm.authorized_keys.ai-worker\n"
    assert credential_files((UserSpec("nokey", ssh_credential=False),)) is None
