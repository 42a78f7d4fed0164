"""The image cache: hits without work, atomic failure, locks, stale temp dirs, tools.

The builders here are real functions registered through the public ``register_builder``
hook (the same one the built-in builders use); one test runs the real ``rootfs`` builder
on a small busybox tree to show that a failing chroot command leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from stagingvm.errors import BuildError, ConflictError, NotFoundError, ToolMissingError
from stagingvm.images import (
    Recipe,
    build_image,
    cached_disk,
    image_dir,
    list_images,
    remove_image,
)
from stagingvm.images.buildenv import require_tools
from stagingvm.images.cache import recipe_lock
from stagingvm.images.mounts import mounts_below
from stagingvm.progress import NULL_PROGRESS
from stagingvm.settings import Settings
from tests.unit.images.builders import CALLS


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    CALLS.clear()
    yield Settings(data_dir=tmp_path / "data")


def leftovers(settings: Settings) -> list[str]:
    if not settings.images_dir.exists():
        return []
    return sorted(p.name for p in settings.images_dir.iterdir() if p.name != ".cache")


def test_unchanged_recipe_is_built_once(settings: Settings) -> None:
    recipe = Recipe(name="unit-a", builder="unit-counter")
    first = build_image(recipe, settings)
    assert first == settings.images_dir / recipe.cache_key / "disk.qcow2"
    assert first.read_text() == recipe.content_hash()
    second = build_image(Recipe(name="unit-a", builder="unit-counter"), settings)
    assert second == first and CALLS == ["unit-a"]
    assert cached_disk(recipe, settings) == first
    build_image(recipe, settings, force=True)
    assert CALLS == ["unit-a", "unit-a"]
    assert leftovers(settings) == [recipe.cache_key]
    logs = list(settings.logs_dir.glob(f"image-{recipe.cache_key}-*.log"))
    assert logs and "building unit-a" in logs[0].read_text()


def test_a_changed_recipe_gets_its_own_entry(settings: Settings) -> None:
    one = Recipe(name="unit-a", builder="unit-counter")
    two = Recipe(name="unit-a", builder="unit-counter", packages=("x",))
    assert build_image(one, settings) != build_image(two, settings)
    assert CALLS == ["unit-a", "unit-a"]
    assert {i.hash12 for i in list_images(settings)} == {one.hash12, two.hash12}


def test_failed_build_leaves_no_image_and_no_temp_dir(settings: Settings) -> None:
    recipe = Recipe(name="unit-broken", builder="unit-failing")
    with pytest.raises(BuildError) as err:
        build_image(recipe, settings)
    assert "exited with status 3" in str(err.value)
    assert any("something broke" in line for line in err.value.log_tail)
    assert err.value.hint is not None and "build log" in err.value.hint
    assert leftovers(settings) == []
    assert cached_disk(recipe, settings) is None


def test_interrupted_build_leaves_nothing(settings: Settings) -> None:
    recipe = Recipe(name="unit-interrupted", builder="unit-interrupted")
    with pytest.raises(KeyboardInterrupt):
        build_image(recipe, settings)
    assert leftovers(settings) == []


def test_stale_temp_dirs_of_dead_builds_are_removed(settings: Settings) -> None:
    recipe = Recipe(name="unit-a", builder="unit-counter")
    stale = settings.images_dir / f".tmp.unit-a.{recipe.hash12}.999999"
    (stale / "root").mkdir(parents=True)
    other = settings.images_dir / ".tmp.unit-ab.000000000000.999999"
    other.mkdir()
    build_image(recipe, settings)
    assert not stale.exists()
    assert other.exists(), "another recipe's temp dir is not ours to remove"


def test_parallel_builds_of_one_recipe_build_once(settings: Settings) -> None:
    recipe = Recipe(name="unit-slow", builder="unit-counter", options=(("sleep", "0.5"),))
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(build_image(recipe, settings)))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert CALLS == ["unit-slow"]
    assert len(results) == 3 and len(set(results)) == 1


def test_layered_recipe_builds_its_parent_first(settings: Settings) -> None:
    parent = Recipe(name="unit-parent", builder="unit-counter")
    child = parent.layered("unit-child", packages=("x",))
    build_image(child, settings)
    assert CALLS == ["unit-parent", "unit-child"]
    build_image(child, settings)
    assert CALLS == ["unit-parent", "unit-child"]


def test_missing_tools_are_named_with_their_package(settings: Settings, tmp_path: Path) -> None:
    recipe = Recipe(name="unit-tool", builder="unit-missing-tool")
    with pytest.raises(ToolMissingError) as err:
        build_image(recipe, settings)
    assert "stagingvm-no-such-tool" in str(err.value)
    assert leftovers(settings) == [] and CALLS == []
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    with pytest.raises(ToolMissingError) as err:
        require_tools(["debootstrap", "qemu-img", "extlinux"], path=str(empty))
    assert err.value.exit_code == 12
    assert err.value.hint is not None
    for package in ("debootstrap", "qemu-utils", "extlinux"):
        assert package in err.value.hint


def test_list_and_remove(settings: Settings) -> None:
    a = Recipe(name="unit-a", builder="unit-counter")
    b = Recipe(name="unit-b", builder="unit-counter")
    build_image(a, settings)
    build_image(b, settings)
    infos = {i.name: i for i in list_images(settings)}
    assert set(infos) == {"unit-a", "unit-b"}
    assert infos["unit-a"].hash12 == a.hash12 and infos["unit-a"].build_seconds is not None
    assert infos["unit-a"].to_json()["path"].endswith("disk.qcow2")
    assert remove_image(settings, "unit-a") == [image_dir(a, settings)]
    assert [i.name for i in list_images(settings)] == ["unit-b"]
    with pytest.raises(NotFoundError):
        remove_image(settings, "unit-a")


def test_remove_refuses_while_a_build_holds_the_lock(settings: Settings) -> None:
    recipe = Recipe(name="unit-a", builder="unit-counter")
    build_image(recipe, settings)
    with recipe_lock(settings, "unit-a", NULL_PROGRESS), pytest.raises(ConflictError):
        remove_image(settings, "unit-a")
    assert cached_disk(recipe, settings) is not None


def _busybox_rootfs_parent(settings: Settings, tmp_path: Path) -> Recipe:
    """A fake cached parent: a busybox tree as rootfs.tar.zst (no debootstrap needed)."""
    parent = Recipe(name="unit-bbparent", builder="rootfs")
    tree = tmp_path / "bbroot"
    (tree / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", tree / "bin/busybox")
    for applet in ("sh", "false", "true"):
        (tree / "bin" / applet).symlink_to("busybox")
    entry = image_dir(parent, settings)
    entry.mkdir(parents=True)
    subprocess.run(["tar", "--zstd", "-cf", str(entry / "rootfs.tar.zst"), "-C", str(tree), "."],
                   check=True)  # fmt: skip
    (entry / "disk.qcow2").write_bytes(b"")
    return parent


@pytest.mark.skipif(os.geteuid() != 0, reason="chroot and mounts need root")
@pytest.mark.skipif(
    not Path("/bin/busybox").is_file() or shutil.which("zstd") is None,
    reason="needs busybox-static and zstd",
)
def test_failing_chroot_command_leaves_no_entry_no_tmp_no_mounts(
    settings: Settings, tmp_path: Path
) -> None:
    parent = _busybox_rootfs_parent(settings, tmp_path)
    child = parent.layered("unit-bbchild", commands=(("/bin/true",), ("/bin/false",)))
    with pytest.raises(BuildError) as err:
        build_image(child, settings)
    assert "exited with status 1" in str(err.value)
    assert any("chroot" in line and "/bin/false" in line for line in err.value.log_tail)
    assert leftovers(settings) == [parent.cache_key]
    assert mounts_below(settings.images_dir) == []
