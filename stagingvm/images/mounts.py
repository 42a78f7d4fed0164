"""Mounts and loop devices used while building, and their guaranteed removal.

Deleting a build directory that still has something mounted below it could delete
through the mount (a bind-mounted /dev, say). So the chroot never bind-mounts host
directories: /dev is a private tmpfs with a handful of device nodes, /proc and /sys are
fresh kernel file systems. And before any build directory is removed, everything mounted
below it is unmounted and every loop device backed by a file in it is detached
(``release_below``); if that fails, the directory is left alone and an error is raised.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

from stagingvm.errors import BuildError

# (name, type, major, minor, mode) of the device nodes a chroot needs for apt and dpkg.
_DEV_NODES = (
    ("null", stat.S_IFCHR, 1, 3, 0o666),
    ("zero", stat.S_IFCHR, 1, 5, 0o666),
    ("full", stat.S_IFCHR, 1, 7, 0o666),
    ("random", stat.S_IFCHR, 1, 8, 0o666),
    ("urandom", stat.S_IFCHR, 1, 9, 0o666),
    ("tty", stat.S_IFCHR, 5, 0, 0o666),
)


def _unescape(field: str) -> str:
    """/proc/self/mountinfo escapes space, tab, newline and backslash as octal."""
    return (
        field.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
    )


def mounts_below(path: Path) -> list[Path]:
    """Mount points at or below *path*, deepest first."""
    base = os.path.realpath(path)
    found: list[Path] = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        parts = line.split(" ")
        if len(parts) < 5:
            continue
        point = _unescape(parts[4])
        if point == base or point.startswith(base.rstrip("/") + "/"):
            found.append(Path(point))
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def umount(point: Path) -> None:
    """Unmount *point*; fall back to a lazy unmount if it is busy."""
    proc = subprocess.run(["umount", str(point)], capture_output=True, check=False)
    if proc.returncode != 0 and point.is_mount():
        subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)


def loops_below(path: Path) -> list[str]:
    """Loop devices whose backing file lies below *path*."""
    base = os.path.realpath(path).rstrip("/") + "/"
    devices: list[str] = []
    sys_block = Path("/sys/block")
    if not sys_block.is_dir():
        return devices
    for dev in sys_block.glob("loop*"):
        backing = dev / "loop" / "backing_file"
        try:
            target = backing.read_text().strip()
        except OSError:
            continue
        target = target.removesuffix(" (deleted)")
        if target.startswith(base):
            devices.append("/dev/" + dev.name)
    return devices


def release_below(path: Path) -> None:
    """Unmount everything below *path* and detach its loop devices, or raise."""
    for point in mounts_below(path):
        umount(point)
    for dev in loops_below(path):
        subprocess.run(["losetup", "-d", dev], capture_output=True, check=False)
    left = mounts_below(path)
    if left:
        raise BuildError(
            f"could not unmount {', '.join(map(str, left))}",
            hint="unmount them by hand (umount -l PATH), then run the build again",
        )


def remove_tree(path: Path) -> None:
    """Delete a build directory, but only once nothing is mounted below it."""
    if not path.exists():
        return
    release_below(path)
    shutil.rmtree(path, ignore_errors=False)


@contextlib.contextmanager
def chroot_mounts(root: Path) -> Iterator[None]:
    """Mount /proc, /sys, a private /dev (tmpfs + nodes) and /run inside *root*."""
    mounted: list[Path] = []

    def mount(fstype: str, target: Path, options: str | None = None) -> None:
        target.mkdir(parents=True, exist_ok=True)
        argv = ["mount", "-t", fstype]
        if options:
            argv += ["-o", options]
        argv += [fstype, str(target)]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise BuildError(f"mount {fstype} on {target} failed: {proc.stderr.strip()}")
        mounted.append(target)

    try:
        mount("proc", root / "proc")
        mount("sysfs", root / "sys", "ro")
        mount("tmpfs", root / "dev", "mode=0755,size=16m")
        dev = root / "dev"
        for name, kind, major, minor, mode in _DEV_NODES:
            os.mknod(dev / name, kind | mode, os.makedev(major, minor))
            os.chmod(dev / name, mode)
        (dev / "fd").symlink_to("/proc/self/fd")
        for i, n in enumerate(("stdin", "stdout", "stderr")):
            (dev / n).symlink_to(f"/proc/self/fd/{i}")
        mount("devpts", dev / "pts", "newinstance,ptmxmode=0666")
        (dev / "ptmx").symlink_to("pts/ptmx")
        (dev / "shm").mkdir()
        mount("tmpfs", root / "run", "mode=0755,size=64m")
        yield
    finally:
        for target in reversed(mounted):
            umount(target)
