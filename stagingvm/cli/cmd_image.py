"""``image build|list|rm``: guest images made from Debian packages by stagingvm itself.

Images are cached by a hash of their recipe in ``<data_dir>/images``; building an unchanged
recipe again returns at once. See docs/images.md.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

import typer

from stagingvm.cli.output import human_size
from stagingvm.cli.state import cli_state
from stagingvm.errors import StagingVMError

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def image_build(
    ctx: typer.Context,
    recipe: Annotated[str, typer.Argument(help="Recipe name (see `image list --recipes`).")],
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild even if the image is cached.")
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Build the image of RECIPE (or find it in the cache); print the qcow2 path.

    Needs root (debootstrap, chroot, loop devices) and debootstrap, qemu-img, e2fsprogs,
    extlinux. Debian packages come from the recipe's mirror; downloads are cached.

    Example:

    \b
      pr-test-vm image build tiny
      pr-test-vm image build debian-docker --force
    """
    from stagingvm.images import build_image, get_recipe
    from stagingvm.images.cache import MANIFEST_NAME

    state = cli_state(ctx)
    the_recipe = get_recipe(recipe)
    disk = build_image(the_recipe, state.settings, progress=state.out.progress(), force=force)
    if json_out:
        import json

        manifest: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            manifest = json.loads((disk.parent / MANIFEST_NAME).read_text())
        doc = {"name": the_recipe.name, "hash": the_recipe.hash12, "path": str(disk)}
        state.out.json({**doc, "manifest": manifest})
    else:
        state.out.info(f"image {the_recipe.cache_key} is ready ({human_size(disk.stat().st_size)})")
        state.out.data(str(disk))


def image_list(
    ctx: typer.Context,
    json_out: JsonOption = False,
    recipes: Annotated[
        bool, typer.Option("--recipes", help="List the known recipes instead of the cache.")
    ] = False,
) -> None:
    """List cached images (or, with --recipes, the recipes that can be built).

    An image is "current" when its hash is that of the recipe as this version defines it;
    older entries can be removed with `image rm NAME-HASH`.

    Example:

    \b
      pr-test-vm image list --json
    """
    from stagingvm.images import get_recipe, list_images, recipe_names

    state = cli_state(ctx)
    current: dict[str, str] = {}
    for name in recipe_names():
        # A recipe that cannot be made (bad plug-in) must not hide the cache listing.
        with contextlib.suppress(StagingVMError):
            current[name] = get_recipe(name).hash12
    if recipes:
        docs = [
            {"name": n, "hash": h, "description": get_recipe(n).description}
            for n, h in sorted(current.items())
        ]
        if json_out:
            state.out.json(docs)
        else:
            state.out.data("\n".join(f"{d['name']:<16} {d['description']}" for d in docs))
        return
    entries = []
    for info in list_images(state.settings):
        doc = info.to_json()
        doc["current"] = current.get(info.name) == info.hash12
        entries.append(doc)
    if json_out:
        state.out.json(entries)
        return
    if not entries:
        state.out.info("no images built yet: try `pr-test-vm image build tiny`")
        return
    lines = [f"{'NAME':<16} {'HASH':<12} {'SIZE':>9}  {'BUILT':<20} CURRENT"]
    for d in entries:
        lines.append(
            f"{d['name']:<16} {d['hash']:<12} {human_size(d['disk_bytes']):>9}  "
            f"{d['built_at'] or '-':<20} {'yes' if d['current'] else 'no'}"
        )
    state.out.data("\n".join(lines))


def image_rm(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Recipe name (all its entries) or NAME-HASH.")],
) -> None:
    """Remove cached images of a recipe (VMs already started keep their own copy).

    Example:

    \b
      pr-test-vm image rm debian
    """
    from stagingvm.images import remove_image

    state = cli_state(ctx)
    for path in remove_image(state.settings, name, progress=state.out.progress()):
        state.out.info(f"removed {path}")


def register(app: typer.Typer) -> None:
    image = typer.Typer(
        name="image",
        help="Guest images built from Debian packages (tiny, debian, debian-docker, ...).",
        no_args_is_help=True,
    )
    image.command("build")(image_build)
    image.command("list")(image_list)
    image.command("rm")(image_rm)
    app.add_typer(image)
