"""Named recipes and builders, and how other modules add their own.

``RECIPES`` maps a recipe name to a factory returning a ``Recipe`` (factories take
keyword options, e.g. ``RECIPES["debian"](docker=True)``). Another module adds recipes
with ``register_recipe``; to be found by name from the CLI it must also be listed in
``RECIPE_MODULES`` (imported lazily the first time a recipe is looked up), the same way
CLI command groups are listed in ``stagingvm.cli.app``.

``BUILDERS`` maps ``Recipe.builder`` to the function that turns a recipe into a disk:
``rootfs`` (debootstrap, optionally on a parent's cached root file system) and ``tiny``
(a kernel and an initramfs on a small disk).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from stagingvm.errors import InvalidInputError, NotFoundError
from stagingvm.images.buildenv import BuildContext
from stagingvm.images.recipe import Recipe

RecipeFactory = Callable[..., Recipe]
Builder = Callable[[BuildContext], None]

# Host tools the disk assembly (stagingvm.images.disk) runs.
DISK_TOOLS = ("mkfs.ext4", "qemu-img", "extlinux", "losetup", "mount", "umount")


@dataclass(frozen=True)
class BuilderSpec:
    """A builder function and the host tools it runs (checked before a build starts)."""

    build: Builder
    tools: tuple[str, ...] = ()


RECIPES: dict[str, RecipeFactory] = {}
BUILDERS: dict[str, BuilderSpec] = {}

# Modules that register recipes when imported (one line each; e.g. the policy lab's).
RECIPE_MODULES: list[str] = [
    "stagingvm.images.rootfs",
    "stagingvm.images.debian",
    "stagingvm.images.tiny",
    "stagingvm.checks.designs",
]

_loaded = False


def register_recipe(name: str, factory: RecipeFactory, *, replace: bool = False) -> None:
    """Make *factory* available as recipe *name* (``pr-test-vm image build NAME``)."""
    if name in RECIPES and RECIPES[name] is not factory and not replace:
        raise InvalidInputError(f"an image recipe named {name!r} is already registered")
    RECIPES[name] = factory


def register_builder(
    name: str, builder: Builder, *, tools: tuple[str, ...] = (), replace: bool = False
) -> None:
    """Make *builder* the one for recipes with ``builder=name``; *tools* are checked first."""
    spec = BuilderSpec(builder, tools)
    if name in BUILDERS and BUILDERS[name].build is not builder and not replace:
        raise InvalidInputError(f"an image builder named {name!r} is already registered")
    BUILDERS[name] = spec


def load_recipe_modules() -> None:
    """Import every module in RECIPE_MODULES once (they register on import)."""
    global _loaded
    if _loaded:
        return
    for module in RECIPE_MODULES:
        importlib.import_module(module)
    _loaded = True


def recipe_names() -> list[str]:
    load_recipe_modules()
    return sorted(RECIPES)


def get_recipe(name: str, **options: object) -> Recipe:
    """The recipe registered as *name*, made with *options*."""
    load_recipe_modules()
    try:
        factory = RECIPES[name]
    except KeyError:
        raise NotFoundError(
            f"no image recipe named {name!r}",
            hint="known recipes: " + ", ".join(sorted(RECIPES)),
        ) from None
    return factory(**options)


def get_builder(name: str) -> BuilderSpec:
    load_recipe_modules()
    try:
        return BUILDERS[name]
    except KeyError:
        raise InvalidInputError(
            f"no image builder named {name!r}",
            hint="known builders: " + ", ".join(sorted(BUILDERS)),
        ) from None
