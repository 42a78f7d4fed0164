"""Module load order from .modinfo, on small ELF64 files made here like the kernel's."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from stagingvm.images.modinfo import modinfo, module_load_order


def elf_module(info: dict[str, str]) -> bytes:
    """An ELF64 LE relocatable with a .shstrtab and a .modinfo section (what .ko files have)."""
    shstrtab = b"\0.shstrtab\0.modinfo\0"
    modinfo_data = b"".join(f"{k}={v}".encode() + b"\0" for k, v in info.items())
    header_size, sh_size = 64, 64
    data_off = header_size
    shstr_off = data_off
    mod_off = shstr_off + len(shstrtab)
    shoff = mod_off + len(modinfo_data)
    header = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header += struct.pack(
        "<HHIQQQIHHHHHH", 1, 62, 1, 0, 0, shoff, 0, header_size, 0, 0, sh_size, 3, 1
    )

    def section(name: int, offset: int, size: int) -> bytes:
        return struct.pack(
            "<IIQQQQIIQQ", name, 3 if name == 1 else 1, 0, 0, offset, size, 0, 0, 1, 0
        )

    sections = bytes(sh_size) + section(1, shstr_off, len(shstrtab))
    sections += section(11, mod_off, len(modinfo_data))
    return header + shstrtab + modinfo_data + sections


def make_tree(tmp_path: Path, modules: dict[str, str]) -> Path:
    root = tmp_path / "lib/modules/6.1.0-test"
    for name, deps in modules.items():
        path = root / "kernel/drivers" / f"{name}.ko"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(elf_module({"license": "GPL", "depends": deps, "name": name}))
    (root / "modules.builtin").write_text("kernel/drivers/builtin_one.ko\n")
    return root


def test_modinfo_reads_the_section() -> None:
    info = modinfo(elf_module({"depends": "virtio,virtio_ring", "license": "GPL"}))
    assert info["depends"] == "virtio,virtio_ring" and info["license"] == "GPL"
    with pytest.raises(ValueError):
        modinfo(b"not an elf file at all, just text")


def test_dependencies_come_first_and_builtins_are_skipped(tmp_path: Path) -> None:
    root = make_tree(
        tmp_path,
        {
            "virtio_ring": "",
            "virtio": "",
            "virtio_pci_modern_dev": "",
            "virtio_pci": "virtio,virtio_ring,virtio_pci_modern_dev",
            "failover": "",
            "net_failover": "failover",
            "virtio_net": "net_failover,virtio,virtio_ring,builtin_one",
            "evdev": "",
        },
    )
    order = [name for name, _ in module_load_order(root, ["virtio_pci", "virtio_net", "evdev"])]
    assert order.index("virtio_pci") > max(order.index(d) for d in ("virtio", "virtio_ring"))
    assert order.index("failover") < order.index("net_failover") < order.index("virtio_net")
    assert "builtin_one" not in order and order[-1] == "evdev"
    assert len(order) == len(set(order)) == 8


def test_missing_modules_and_cycles_are_errors(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"a": "b", "b": "a", "c": "nosuch"})
    with pytest.raises(ValueError, match="cycle"):
        module_load_order(root, ["a"])
    with pytest.raises(FileNotFoundError, match="nosuch"):
        module_load_order(root, ["c"])
