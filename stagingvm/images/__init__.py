"""The image builder: guest disks made from Debian packages, cached by recipe hash.

>>> from stagingvm.images import build_image, get_recipe
>>> disk = build_image(get_recipe("debian", docker=True), settings)

Recipes (``recipe.py``) are frozen descriptions with a content hash; ``cache.py`` builds
each one once, atomically, under a host-wide lock; builders (``rootfs.py`` for debootstrap
images, ``tiny.py`` for the kernel + initramfs guest) make a root tree that ``disk.py``
turns into a BIOS-bootable qcow2. See docs/images.md.

May import the top-level leaves and ``config``.
"""

from __future__ import annotations

from stagingvm.images.cache import (
    ImageInfo,
    build_image,
    cached_disk,
    image_dir,
    list_images,
    remove_image,
)
from stagingvm.images.recipe import BUILDER_VERSION, FileSpec, Recipe, UserSpec
from stagingvm.images.registry import (
    BUILDERS,
    RECIPE_MODULES,
    RECIPES,
    get_recipe,
    recipe_names,
    register_builder,
    register_recipe,
)

__all__ = [
    "BUILDERS",
    "BUILDER_VERSION",
    "RECIPES",
    "RECIPE_MODULES",
    "FileSpec",
    "ImageInfo",
    "Recipe",
    "UserSpec",
    "build_image",
    "cached_disk",
    "get_recipe",
    "image_dir",
    "list_images",
    "recipe_names",
    "register_builder",
    "register_recipe",
    "remove_image",
]
