"""Recipe hashing and validation: every input that shapes an image changes its hash."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from stagingvm.errors import InvalidInputError, NotFoundError
from stagingvm.images import get_recipe, recipe
from stagingvm.images.recipe import FileSpec, Recipe, UserSpec


def base() -> Recipe:
    return Recipe(
        name="unit-base",
        packages=("openssh-server", "sudo"),
        cmdline=("quiet",),
        users=(UserSpec("alice", groups=("sudo",)),),
        files=(FileSpec("/etc/motd", b"hello\n", 0o644),),
        commands=(("systemctl", "enable", "ssh"),),
        size_mb=1024,
    )


def test_equal_recipes_have_equal_hashes() -> None:
    assert base().content_hash() == base().content_hash()
    assert base().cache_key == f"unit-base-{base().content_hash()[:12]}"


CHANGES: list[tuple[str, dict[str, Any]]] = [
    ("name", {"name": "unit-other"}),
    ("builder", {"builder": "tiny"}),
    ("suite", {"suite": "trixie"}),
    ("mirror", {"mirror": "http://mirror.example/debian"}),
    ("variant", {"variant": "buildd"}),
    ("packages", {"packages": ("openssh-server", "sudo", "curl")}),
    ("package order", {"packages": ("sudo", "openssh-server")}),
    ("cmdline", {"cmdline": ("quiet", "apparmor=0")}),
    ("user groups", {"users": (UserSpec("alice", groups=("docker",)),)}),
    ("user credential", {"users": (UserSpec("alice", groups=("sudo",), ssh_credential=False),)}),
    ("file content", {"files": (FileSpec("/etc/motd", b"hello!\n", 0o644),)}),
    ("file mode", {"files": (FileSpec("/etc/motd", b"hello\n", 0o600),)}),
    ("file owner", {"files": (FileSpec("/etc/motd", b"hello\n", 0o644, owner="alice"),)}),
    ("file path", {"files": (FileSpec("/etc/issue", b"hello\n", 0o644),)}),
    ("commands", {"commands": (("systemctl", "enable", "sshd"),)}),
    ("size", {"size_mb": 2048}),
    ("hostname", {"hostname": "other-host"}),
    ("options", {"options": (("modules", "virtio_net"),)}),
    ("parent", {"parent": Recipe(name="unit-parent")}),
]


@pytest.mark.parametrize(("what", "change"), CHANGES, ids=[c[0] for c in CHANGES])
def test_any_input_changes_the_hash(what: str, change: dict[str, Any]) -> None:
    changed = dataclasses.replace(base(), **change)
    assert changed.content_hash() != base().content_hash(), what


def test_description_and_keep_rootfs_do_not_change_the_image() -> None:
    changed = dataclasses.replace(base(), description="words", keep_rootfs=False)
    assert changed.content_hash() == base().content_hash()


def test_builder_version_is_part_of_the_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    before = base().content_hash()
    monkeypatch.setattr(recipe, "BUILDER_VERSION", recipe.BUILDER_VERSION + "-next")
    assert base().content_hash() != before


def test_a_parent_change_changes_every_child() -> None:
    parent = Recipe(name="unit-parent", packages=("a",))
    child = parent.layered("unit-child", packages=("b",))
    other_parent = dataclasses.replace(parent, packages=("a", "c"))
    other_child = other_parent.layered("unit-child", packages=("b",))
    assert child.content_hash() != other_child.content_hash()
    assert child.parent is parent and child.root is parent
    assert [r.name for r in child.chain()] == ["unit-parent", "unit-child"]


def test_layered_recipes_add_to_their_parent() -> None:
    parent = Recipe(name="unit-parent", cmdline=("a=1",), users=(UserSpec("alice"),))
    child = parent.layered("unit-child", cmdline=("b=2",), users=(UserSpec("bob"),))
    assert child.full_cmdline() == ("a=1", "b=2")
    assert [u.name for u in child.all_users()] == ["alice", "bob"]
    assert child.keep_rootfs is False and parent.keep_rootfs is True


@pytest.mark.parametrize(
    "make",
    [
        lambda: Recipe(name="Bad Name"),
        lambda: Recipe(name="ok", hostname="no_underscores"),
        lambda: Recipe(name="ok", size_mb=1),
        lambda: Recipe(name="ok", commands=((),)),
        lambda: FileSpec("relative/path", b""),
        lambda: FileSpec("/etc/../root/x", b""),
        lambda: FileSpec("/etc/x", b"", mode=0o17777),
        lambda: UserSpec("Root!"),
        lambda: Recipe(name="child", builder="tiny", parent=Recipe(name="parent")),
    ],
)
def test_invalid_recipes_are_refused(make: Any) -> None:
    with pytest.raises(InvalidInputError):
        make()


def test_builtin_recipes_are_registered_and_stable() -> None:
    tiny, debian, docker = get_recipe("tiny"), get_recipe("debian"), get_recipe("debian-docker")
    assert tiny.content_hash() == get_recipe("tiny").content_hash()
    assert get_recipe("debian", docker=True).content_hash() == docker.content_hash()
    assert len({tiny.content_hash(), debian.content_hash(), docker.content_hash()}) == 3
    assert "docker.io" in docker.packages and "docker.io" not in debian.packages
    assert "apparmor=0" in docker.cmdline
    # The tiny guest's scripts are part of its hash: they are carried by value.
    rcs = next(f for f in tiny.files if f.path == "/etc/init.d/rcS")
    assert b'say "sshd ready"' in rcs.content


def test_unknown_recipe_names_the_known_ones() -> None:
    with pytest.raises(NotFoundError) as err:
        get_recipe("no-such-recipe")
    assert err.value.hint is not None and "tiny" in err.value.hint
