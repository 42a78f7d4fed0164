"""What an image is made of: a frozen, typed recipe with a content hash.

A recipe names everything that affects the bytes of the image it describes: the Debian
suite and mirror, the packages, the kernel command line, the files added (their content,
mode and owner), the users, the commands run in the chroot, the disk size, the parent
recipe it is layered on, and the builder that turns it into a disk. ``content_hash()``
is a SHA-256 over all of that plus ``BUILDER_VERSION``, so an edit to any input, or to the
builder itself (bump the constant), gives a new cache entry, while an unchanged recipe
maps to the same directory and is not rebuilt.

Files are carried by value (bytes), not by path: the hash covers exactly what is
copied, and a recipe never depends on a host file changing behind its back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from stagingvm.errors import InvalidInputError
from stagingvm.names import validate_name

# Bump when a builder changes in a way that changes its output for the same recipe.
BUILDER_VERSION = "images-7"

DEFAULT_SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"


@dataclass(frozen=True)
class FileSpec:
    """One file written into the image's root file system.

    ``path`` is absolute inside the guest; ``owner`` and ``group`` are names resolved in
    the guest (after the recipe's users exist), so a file can belong to a recipe user.
    """

    path: str
    content: bytes
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"

    def __post_init__(self) -> None:
        if not self.path.startswith("/") or ".." in self.path.split("/"):
            raise InvalidInputError(f"image file path must be absolute and plain: {self.path!r}")
        if not 0 <= self.mode <= 0o7777:
            raise InvalidInputError(f"bad file mode {oct(self.mode)} for {self.path}")

    def to_hashable(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": hashlib.sha256(self.content).hexdigest(),
            "mode": self.mode,
            "owner": self.owner,
            "group": self.group,
        }


@dataclass(frozen=True)
class UserSpec:
    """A login user created in the image.

    With ``ssh_credential`` (the default) the image gets a tmpfiles rule that writes
    ``/home/NAME/.ssh/authorized_keys`` at boot from the systemd credential
    ``stagingvm.authorized_keys.NAME`` (passed in an SMBIOS OEM string), so no key is baked.
    """

    name: str
    groups: tuple[str, ...] = ()
    shell: str = "/bin/bash"
    uid: int | None = None
    ssh_credential: bool = True

    def __post_init__(self) -> None:
        validate_name(self.name, what="user name")

    def to_hashable(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "groups": list(self.groups),
            "shell": self.shell,
            "uid": self.uid,
            "ssh_credential": self.ssh_credential,
        }


@dataclass(frozen=True)
class Recipe:
    """A typed description of one image. Build it with ``stagingvm.images.build_image``.

    For a layered recipe (``parent`` set) the parent's root file system is reused from
    the cache and ``packages``, ``users``, ``files``, ``commands`` and ``cmdline`` are
    *added* to it; ``suite``, ``mirror`` and ``variant`` come from the parent.
    """

    name: str
    builder: str = "rootfs"
    suite: str = DEFAULT_SUITE
    mirror: str = DEFAULT_MIRROR
    variant: str = "minbase"
    packages: tuple[str, ...] = ()
    cmdline: tuple[str, ...] = ()
    users: tuple[UserSpec, ...] = ()
    files: tuple[FileSpec, ...] = ()
    commands: tuple[tuple[str, ...], ...] = ()
    size_mb: int = 2048
    hostname: str = "stagingvm"
    parent: Recipe | None = None
    options: tuple[tuple[str, str], ...] = ()
    description: str = ""
    keep_rootfs: bool = True

    def __post_init__(self) -> None:
        validate_name(self.name, what="recipe name")
        validate_name(self.hostname, what="hostname")
        if not 64 <= self.size_mb <= 1024 * 1024:
            raise InvalidInputError(f"recipe {self.name}: size_mb {self.size_mb} out of range")
        for cmd in self.commands:
            if not cmd or not all(isinstance(a, str) for a in cmd):
                raise InvalidInputError(f"recipe {self.name}: commands must be argument lists")
        if self.parent is not None and self.parent.builder != self.builder:
            raise InvalidInputError(
                f"recipe {self.name}: parent {self.parent.name} uses builder "
                f"{self.parent.builder!r}, not {self.builder!r}"
            )

    # -- derived values ---------------------------------------------------------------
    def option(self, key: str, default: str = "") -> str:
        return dict(self.options).get(key, default)

    @property
    def root(self) -> Recipe:
        """The first recipe of the parent chain (the one that ran debootstrap)."""
        r = self
        while r.parent is not None:
            r = r.parent
        return r

    def chain(self) -> list[Recipe]:
        """The parent chain from the root down to this recipe."""
        out: list[Recipe] = []
        r: Recipe | None = self
        while r is not None:
            out.append(r)
            r = r.parent
        return out[::-1]

    def full_cmdline(self) -> tuple[str, ...]:
        """Kernel arguments of the whole chain, parents first."""
        return tuple(arg for r in self.chain() for arg in r.cmdline)

    def all_users(self) -> tuple[UserSpec, ...]:
        return tuple(u for r in self.chain() for u in r.users)

    def to_hashable(self) -> dict[str, Any]:
        return {
            "builder_version": BUILDER_VERSION,
            "name": self.name,
            "builder": self.builder,
            "suite": self.suite,
            "mirror": self.mirror,
            "variant": self.variant,
            "packages": list(self.packages),
            "cmdline": list(self.cmdline),
            "users": [u.to_hashable() for u in self.users],
            "files": [f.to_hashable() for f in self.files],
            "commands": [list(c) for c in self.commands],
            "size_mb": self.size_mb,
            "hostname": self.hostname,
            "parent": self.parent.content_hash() if self.parent is not None else None,
            "options": [list(o) for o in self.options],
        }

    def content_hash(self) -> str:
        """SHA-256 (hex) over every input that affects the image's bytes."""
        blob = json.dumps(self.to_hashable(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    @property
    def hash12(self) -> str:
        return self.content_hash()[:12]

    @property
    def cache_key(self) -> str:
        """``NAME-HASH12``: the directory name of this recipe's cache entry."""
        return f"{self.name}-{self.hash12}"

    def layered(
        self,
        name: str,
        *,
        packages: tuple[str, ...] = (),
        users: tuple[UserSpec, ...] = (),
        files: tuple[FileSpec, ...] = (),
        commands: tuple[tuple[str, ...], ...] = (),
        cmdline: tuple[str, ...] = (),
        size_mb: int | None = None,
        description: str = "",
    ) -> Recipe:
        """A child recipe built on top of this one (its rootfs is reused from the cache)."""
        return Recipe(
            name=name,
            builder=self.builder,
            suite=self.suite,
            mirror=self.mirror,
            variant=self.variant,
            packages=packages,
            cmdline=cmdline,
            users=users,
            files=files,
            commands=commands,
            size_mb=size_mb if size_mb is not None else self.size_mb,
            hostname=self.hostname,
            parent=self,
            options=self.options,
            description=description,
            keep_rootfs=False,
        )

    def with_changes(self, **changes: Any) -> Recipe:
        return replace(self, **changes)


def recipe_summary(recipe: Recipe) -> Mapping[str, Any]:
    """A JSON-friendly description of a recipe (kept in the cache entry's manifest)."""
    return {
        "name": recipe.name,
        "hash": recipe.content_hash(),
        "builder": recipe.builder,
        "parent": recipe.parent.cache_key if recipe.parent is not None else None,
        "suite": recipe.suite,
        "packages": list(recipe.packages),
        "users": [u.name for u in recipe.all_users()],
        "cmdline": list(recipe.full_cmdline()),
        "size_mb": recipe.size_mb,
        "description": recipe.description,
    }
