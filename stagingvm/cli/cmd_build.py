"""``pr-test-vm build``: make a base image that VMs start from.

Three forms share the verb. ``--image PATH --name NAME`` imports a ready qcow2 (or raw) disk
as a read-only base volume. ``--recipe NAME`` builds one of the image builder's recipes
(``tiny``, ``debian``, the policy lab's ``design-a``/``design-b``/``hardened``) and imports it.
A positional TARGET (``FLAKE#HOST`` or a ``configuration.nix``) is built with nix by
``stagingvm.nixbuild.build.build_target``; that module is imported only when a TARGET is given
(``--help`` stays fast). Each form ends with a ``BaseImage``, printed by name or as JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stagingvm.cli.buildopts import ImagePath, NixOptions, NixpkgsPath, RecipeName
from stagingvm.cli.state import cli_state
from stagingvm.errors import InvalidInputError, NotFoundError
from stagingvm.names import validate_name

if TYPE_CHECKING:
    from stagingvm.virt.bases import BaseImage


def build(
    ctx: typer.Context,
    target: Annotated[
        str | None,
        typer.Argument(
            metavar="TARGET",
            help="What nix builds: FLAKE#HOST or a path to a configuration.nix.",
            show_default=False,
        ),
    ] = None,
    image: ImagePath = None,
    name: Annotated[
        str | None,
        typer.Option("--name", metavar="NAME", help="Name of the base image to create."),
    ] = None,
    recipe: RecipeName = None,
    nix_option: NixOptions = None,
    out_link: Annotated[
        Path | None,
        typer.Option(
            "--out-link",
            metavar="PATH",
            help="GC root for the built image [default: DATA_DIR/gcroots/NAME].",
        ),
    ] = None,
    nixpkgs: NixpkgsPath = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the base image as JSON on stdout.")
    ] = False,
) -> None:
    """Make a base image that VMs start from.

    With --image, import a ready disk image as a read-only base volume named NAME. With
    --recipe, build one of stagingvm's own guest images (cached by recipe hash) and import
    it. With a TARGET, build that NixOS configuration with nix and import the result. The
    base's name is printed on stdout.

    Example:

    \b
      pr-test-vm build --image ./nixos.qcow2 --name hermes
      pr-test-vm build --recipe design-b --name demo
      pr-test-vm build .#lazyworkhorse --name hermes
    """
    state = cli_state(ctx)
    if name is not None:
        validate_name(name, what="base image name")
    given = [x for x in (target, image, recipe) if x is not None]
    if len(given) > 1:
        raise InvalidInputError(
            "give one of a TARGET to build, --image to import or --recipe, not several",
            hint="`pr-test-vm build --help` shows the three forms",
        )
    if not given:
        raise InvalidInputError(
            "nothing to build: give a TARGET (FLAKE#HOST), --image PATH or --recipe NAME",
            hint="example: pr-test-vm build --image ./nixos.qcow2 --name hermes",
        )
    if target is None and (nix_option or out_link is not None or nixpkgs is not None):
        raise InvalidInputError(
            "--nix-option, --out-link and --nixpkgs apply only to a nix TARGET",
            hint="example: pr-test-vm build .#lazyworkhorse --nix-option cores=2",
        )

    base: BaseImage
    if recipe is not None:
        from stagingvm.images import build_image, get_recipe

        spec = get_recipe(recipe)
        disk = build_image(spec, state.settings, progress=state.out.progress())
        base_name = name if name is not None else validate_name(recipe, what="base image name")
        for manager in state.hosts().each():  # several hosts: a copy on each
            base = manager.import_base(disk, base_name, source_key=f"recipe:{disk.parent.name}")
    elif image is not None:
        if name is None:
            raise InvalidInputError(
                "--image needs --name",
                hint="example: pr-test-vm build --image disk.qcow2 --name hermes",
            )
        if not image.is_file():
            raise NotFoundError(f"image file {image} does not exist or is not a file")
        for manager in state.hosts().each():
            base = manager.import_base(image.resolve(), name)
    else:
        assert target is not None
        from stagingvm.nixbuild import build as nixbuild
        from stagingvm.nixbuild.expr import parse_nix_option

        progress = state.out.progress()

        result = nixbuild.build_target(
            target,
            state.settings,
            name=name,
            nix_options=[parse_nix_option(o) for o in nix_option or ()],
            out_link=out_link,
            nixpkgs=nixpkgs,
            progress=progress,
        )
        for manager in state.hosts().each():
            base = nixbuild.import_result(result, manager, progress=progress)

    if json_out:
        state.out.json(base.to_json())
    else:
        state.out.info(f"base image {base.name} is ready")
        state.out.data(base.name)


def register(app: typer.Typer) -> None:
    app.command("build")(build)
