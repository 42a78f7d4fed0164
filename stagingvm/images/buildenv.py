"""The environment one image build runs in: its log, its tools, its work directory.

Every external command of a build goes through ``BuildContext.run``: the command line
and all its output are appended to the build log (kept in ``settings.logs_dir``), and a
failure raises ``BuildError`` carrying the last lines of that log, so the CLI can show
what went wrong without the user hunting for files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from stagingvm.errors import BuildError, ToolMissingError
from stagingvm.images.recipe import Recipe
from stagingvm.progress import NULL_PROGRESS, Progress
from stagingvm.settings import Settings

# Host tool -> Debian package that provides it (named in ToolMissingError's hint).
TOOL_PACKAGES: dict[str, str] = {
    "debootstrap": "debootstrap",
    "qemu-img": "qemu-utils",
    "mkfs.ext4": "e2fsprogs",
    "extlinux": "extlinux",
    "losetup": "mount",
    "mount": "mount",
    "umount": "mount",
    "chroot": "coreutils",
    "tar": "tar",
    "dpkg-deb": "dpkg",
    "cpio": "cpio",
}

# Files from host packages the disk assembly copies (file -> Debian package).
MBR_CANDIDATES = (
    Path("/usr/lib/syslinux/mbr/mbr.bin"),
    Path("/usr/lib/EXTLINUX/mbr.bin"),
    Path("/usr/share/syslinux/mbr.bin"),
)

LOG_TAIL_LINES = 30
# What debootstrap says when the mirror does not answer.
_MIRROR_UNREACHABLE = "Failed getting release file"

# A PATH that finds the usual tools even when stagingvm runs from a minimal environment.
_SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def find_tool(name: str, *, path: str | None = None) -> str | None:
    """Where *name* is: on *path* if given, else on $PATH or the usual system dirs."""
    if path is None:
        path = os.pathsep.join(p for p in (os.environ.get("PATH", ""), _SYSTEM_PATH) if p)
    return shutil.which(name, path=path)


def require_tools(names: Sequence[str], *, path: str | None = None) -> dict[str, str]:
    """Return ``{name: absolute path}`` or raise ToolMissingError naming the apt packages.

    *path* (a PATH-style string) replaces the default search path.
    """
    found: dict[str, str] = {}
    missing: list[str] = []
    for name in names:
        where = find_tool(name, path=path)
        if where is None:
            missing.append(name)
        else:
            found[name] = where
    if missing:
        pkgs = sorted({TOOL_PACKAGES.get(m, m) for m in missing})
        raise ToolMissingError(
            f"the image builder needs {', '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed",
            hint=f"install them: apt-get install {' '.join(pkgs)} "
            "(on NixOS: add the matching packages to environment.systemPackages)",
        )
    return found


def find_mbr_bin() -> Path:
    for cand in MBR_CANDIDATES:
        if cand.is_file():
            return cand
    raise ToolMissingError(
        "syslinux's mbr.bin was not found",
        hint="install it: apt-get install syslinux-common",
    )


def read_tail(path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


@dataclass
class BuildContext:
    """Everything a builder function needs for one recipe.

    ``workdir`` is a fresh directory beside the cache; the builder leaves ``disk.qcow2``
    (and optionally ``rootfs.tar.zst``) in it. It is renamed into the cache only when the
    builder returns, so a builder never has to clean up after a failure.
    """

    recipe: Recipe
    settings: Settings
    workdir: Path
    log_path: Path
    progress: Progress = NULL_PROGRESS
    parent_dir: Path | None = None
    tool_path: str | None = None
    facts: dict[str, object] = field(default_factory=dict)
    _log: IO[str] | None = None

    @property
    def deb_cache(self) -> Path:
        """Downloaded .deb files shared by all builds (debootstrap --cache-dir)."""
        path = self.settings.images_dir / ".cache" / "debs"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def open_log(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("a", encoding="utf-8", errors="replace")

    def close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log(self, message: str) -> None:
        if self._log is not None:
            self._log.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")
            self._log.flush()

    def fail(self, message: str, *, hint: str | None = None) -> BuildError:
        """A BuildError for this recipe, with the tail of the log attached."""
        self.log(f"FAILED: {message}")
        if self._log is not None:
            self._log.flush()
        tail = read_tail(self.log_path)
        if hint is None and any(_MIRROR_UNREACHABLE in line for line in tail):
            hint = (
                f"the Debian mirror {self.recipe.mirror} cannot be reached from here "
                "(inside the lab's network namespace there is no route out: build images "
                f"outside it first); full build log: {self.log_path}"
            )
        return BuildError(
            f"building image {self.recipe.name!r} failed: {message}",
            log_tail=tail,
            hint=hint or f"full build log: {self.log_path}",
        )

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
        capture: bool = False,
        timeout: float | None = 3600.0,
    ) -> str:
        """Run one command, logging it and its output; raise BuildError on failure.

        With ``capture`` the command's stdout is returned (and not logged); stderr always
        goes to the log.
        """
        self.log("$ " + " ".join(argv))
        full_env = {"PATH": _SYSTEM_PATH, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
        if "TMPDIR" in os.environ:
            full_env["TMPDIR"] = os.environ["TMPDIR"]
        if env:
            full_env.update(env)
        assert self._log is not None, "open_log() first"
        self._log.flush()
        start = time.monotonic()
        try:
            proc = subprocess.run(
                list(argv),
                cwd=cwd,
                env=full_env,
                input=stdin,
                stdout=subprocess.PIPE if capture else self._log,
                stderr=self._log,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError as exc:
            raise self.fail(f"cannot run {argv[0]}: {exc}") from exc
        except subprocess.TimeoutExpired as exc:
            raise self.fail(f"{argv[0]} did not finish within {timeout:.0f} s") from exc
        self.log(f"-> exit {proc.returncode} after {time.monotonic() - start:.1f} s")
        if proc.returncode != 0:
            raise self.fail(f"{' '.join(argv[:3])}... exited with status {proc.returncode}")
        return proc.stdout.decode(errors="replace") if capture else ""
