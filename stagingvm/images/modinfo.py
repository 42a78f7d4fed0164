"""Kernel module dependencies read straight from ``.ko`` files, without depmod.

An initramfs without udev or modprobe has to ``insmod`` modules itself, dependencies
first. The kernel package ships no ``modules.dep`` (depmod makes it on install), but
every module names its dependencies in its ELF ``.modinfo`` section (``depends=a,b``),
which is all a topological sort needs.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path


def _norm(name: str) -> str:
    return name.replace("-", "_")


def modinfo(data: bytes) -> dict[str, str]:
    """The key=value pairs of an ELF64 little-endian module's ``.modinfo`` section."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not an ELF64 little-endian file")
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def section(i: int) -> tuple[int, int, int]:
        base = shoff + i * shentsize
        name = struct.unpack_from("<I", data, base)[0]
        offset, size = struct.unpack_from("<QQ", data, base + 0x18)
        return name, offset, size

    _, str_off, str_size = section(shstrndx)
    names = data[str_off : str_off + str_size]
    for i in range(shnum):
        name_off, offset, size = section(i)
        end = names.find(b"\0", name_off)
        if names[name_off:end] == b".modinfo":
            info: dict[str, str] = {}
            for item in data[offset : offset + size].split(b"\0"):
                key, sep, value = item.partition(b"=")
                if sep:
                    info.setdefault(key.decode(), value.decode(errors="replace"))
            return info
    return {}


def module_files(mod_root: Path) -> dict[str, Path]:
    """{module name: path} for every uncompressed ``.ko`` below *mod_root*."""
    return {_norm(p.name.removesuffix(".ko")): p for p in mod_root.rglob("*.ko")}


def module_load_order(mod_root: Path, wanted: Iterable[str]) -> list[tuple[str, Path]]:
    """*wanted* modules and their dependencies, each after what it depends on.

    Modules built into the kernel (listed in ``modules.builtin``) are skipped.
    """
    files = module_files(mod_root)
    builtin_list = mod_root / "modules.builtin"
    builtin: set[str] = set()
    if builtin_list.is_file():
        builtin = {
            _norm(Path(line.strip()).name.removesuffix(".ko"))
            for line in builtin_list.read_text().splitlines()
        }
    order: list[tuple[str, Path]] = []
    done: set[str] = set()

    def visit(name: str, stack: tuple[str, ...]) -> None:
        name = _norm(name)
        if name in done or name in builtin or not name:
            return
        if name in stack:
            raise ValueError(f"module dependency cycle: {' -> '.join((*stack, name))}")
        if name not in files:
            raise FileNotFoundError(f"kernel module {name} not found under {mod_root}")
        deps = modinfo(files[name].read_bytes()).get("depends", "")
        for dep in filter(None, deps.split(",")):
            visit(dep, (*stack, name))
        done.add(name)
        order.append((name, files[name]))

    for name in wanted:
        visit(name.strip(), ())
    return order
