"""The image cache: build a recipe once, atomically, and find it again by its hash.

``<images_dir>/<name>-<hash12>/`` holds ``disk.qcow2``, ``manifest.json`` and, for
recipes other recipes build on, ``rootfs.tar.zst``. A build runs in
``<images_dir>/.tmp.<name>.<hash12>.<pid>`` and is renamed into place only when it
succeeded, so a failed or interrupted build never leaves a half image. Builds of one
recipe name are serialised by a host-wide lock file; whoever holds it may delete every
other ``.tmp.<name>.*`` directory, since those can only be left over from a build that
died.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stagingvm import locks
from stagingvm.errors import BuildError, ConflictError, NotFoundError, StagingVMError
from stagingvm.images.buildenv import BuildContext, require_tools
from stagingvm.images.mounts import remove_tree
from stagingvm.images.recipe import Recipe, recipe_summary
from stagingvm.images.registry import BuilderSpec, get_builder
from stagingvm.names import validate_name
from stagingvm.progress import NULL_PROGRESS, Progress
from stagingvm.settings import Settings

DISK_NAME = "disk.qcow2"
ROOTFS_NAME = "rootfs.tar.zst"
MANIFEST_NAME = "manifest.json"


def image_dir(recipe: Recipe, settings: Settings) -> Path:
    return settings.images_dir / recipe.cache_key


def cached_disk(recipe: Recipe, settings: Settings) -> Path | None:
    """The cached disk of *recipe*, or None if it has not been built."""
    disk = image_dir(recipe, settings) / DISK_NAME
    return disk if disk.is_file() else None


def recipe_lock(settings: Settings, name: str, progress: Progress) -> locks.AbstractLock:
    """Hold the host-wide build lock of recipe *name* (waiting for it if needed)."""
    return locks.image_lock(
        settings.locks_dir,
        name,
        waiting=lambda: progress.phase(f"waiting for another build of image {name!r}"),
    )


def _clean_stale(settings: Settings, name: str) -> None:
    for stale in settings.images_dir.glob(f".tmp.{name}.*"):
        remove_tree(stale)
    for stale in settings.images_dir.glob(f".old.{name}.*"):
        remove_tree(stale)


def build_image(
    recipe: Recipe,
    settings: Settings,
    *,
    progress: Progress = NULL_PROGRESS,
    force: bool = False,
) -> Path:
    """Return the qcow2 disk of *recipe*, building it first if it is not cached.

    An unchanged recipe returns at once. With ``force`` the image is rebuilt (its
    parents are not). Raises BuildError (with the log tail) or ToolMissingError.
    """
    validate_name(recipe.name, what="recipe name")
    final_dir = image_dir(recipe, settings)
    disk = final_dir / DISK_NAME
    if disk.is_file() and not force:
        return disk
    builder = get_builder(recipe.builder)
    require_tools(builder.tools)
    parent_dir: Path | None = None
    if recipe.parent is not None:
        build_image(recipe.parent, settings, progress=progress)
        parent_dir = image_dir(recipe.parent, settings)
        if not (parent_dir / ROOTFS_NAME).is_file():
            raise BuildError(
                f"image {recipe.parent.name!r} was built without its root file system, "
                f"which {recipe.name!r} builds on",
                hint=f"rebuild it: pr-test-vm image build {recipe.parent.name} --force",
            )
    settings.images_dir.mkdir(parents=True, exist_ok=True)
    with recipe_lock(settings, recipe.name, progress):
        if disk.is_file() and not force:
            return disk  # somebody else built it while we waited
        _clean_stale(settings, recipe.name)
        return _build_locked(recipe, settings, builder, final_dir, parent_dir, progress)


def _build_locked(
    recipe: Recipe,
    settings: Settings,
    builder: BuilderSpec,
    final_dir: Path,
    parent_dir: Path | None,
    progress: Progress,
) -> Path:
    workdir = settings.images_dir / f".tmp.{recipe.name}.{recipe.hash12}.{os.getpid()}"
    workdir.mkdir(mode=0o755)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    ctx = BuildContext(
        recipe=recipe,
        settings=settings,
        workdir=workdir,
        log_path=settings.logs_dir / f"image-{recipe.cache_key}-{stamp}.log",
        progress=progress,
        parent_dir=parent_dir,
    )
    ctx.open_log()
    start = time.monotonic()
    try:
        ctx.log(f"building {recipe.cache_key} in {workdir}")
        with progress.phase(f"building image {recipe.name} ({recipe.hash12})"):
            builder.build(ctx)
        if not (workdir / DISK_NAME).is_file():
            raise ctx.fail(f"builder {recipe.builder!r} produced no {DISK_NAME}")
        manifest = dict(recipe_summary(recipe))
        manifest.update(
            built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            build_seconds=round(time.monotonic() - start, 1),
            disk_bytes=(workdir / DISK_NAME).stat().st_size,
            build_log=str(ctx.log_path),
            facts=ctx.facts,
        )
        (workdir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
        ctx.log(f"done in {manifest['build_seconds']} s")
        old: Path | None = None
        if final_dir.exists():
            old = settings.images_dir / f".old.{recipe.name}.{recipe.hash12}.{os.getpid()}"
            final_dir.rename(old)
        workdir.rename(final_dir)
        if old is not None:
            remove_tree(old)
    except BaseException as exc:
        ctx.log(f"build aborted: {type(exc).__name__}: {exc}")
        ctx.close_log()
        remove_tree(workdir)
        if isinstance(exc, StagingVMError | KeyboardInterrupt | SystemExit):
            raise
        raise BuildError(
            f"building image {recipe.name!r} failed: {type(exc).__name__}: {exc}",
            hint=f"full build log: {ctx.log_path}",
        ) from exc
    finally:
        ctx.close_log()
    return final_dir / DISK_NAME


@dataclass(frozen=True)
class ImageInfo:
    """One cache entry, as ``image list`` shows it."""

    name: str
    hash12: str
    path: Path
    disk_bytes: int
    built_at: str | None
    build_seconds: float | None
    parent: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "hash": self.hash12,
            "path": str(self.path),
            "disk_bytes": self.disk_bytes,
            "built_at": self.built_at,
            "build_seconds": self.build_seconds,
            "parent": self.parent,
        }


def list_images(settings: Settings) -> list[ImageInfo]:
    """Every complete cache entry (temporary build directories are not listed)."""
    out: list[ImageInfo] = []
    root = settings.images_dir
    if not root.is_dir():
        return out
    for entry in sorted(root.iterdir()):
        disk = entry / DISK_NAME
        if entry.name.startswith(".") or not disk.is_file():
            continue
        name, _, hash12 = entry.name.rpartition("-")
        manifest: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            manifest = json.loads((entry / MANIFEST_NAME).read_text())
        out.append(
            ImageInfo(
                name=name,
                hash12=hash12,
                path=disk,
                disk_bytes=disk.stat().st_size,
                built_at=manifest.get("built_at"),
                build_seconds=manifest.get("build_seconds"),
                parent=manifest.get("parent"),
            )
        )
    return out


def remove_image(
    settings: Settings, name: str, *, progress: Progress = NULL_PROGRESS
) -> list[Path]:
    """Remove every cache entry of recipe *name* (or one entry, given ``NAME-HASH12``).

    Refuses while a build of that recipe holds its lock.
    """
    entries = [i for i in list_images(settings) if name in (i.name, f"{i.name}-{i.hash12}")]
    if not entries:
        raise NotFoundError(f"no cached image {name!r}", hint="see: pr-test-vm image list")
    removed: list[Path] = []
    for info in entries:
        busy = ConflictError(
            f"image {info.name!r} is being built right now",
            hint="wait for the build to finish, then remove it",
        )
        with locks.image_lock(settings.locks_dir, info.name, timeout=0, busy=busy):
            with progress.phase(f"removing {info.path.parent.name}"):
                remove_tree(info.path.parent)
            removed.append(info.path.parent)
    return removed
