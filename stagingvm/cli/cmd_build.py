"""``pr-test-vm build``: make a base image that VMs start from.

Two forms share the verb. ``--image PATH --name NAME`` imports a ready qcow2 (or raw) disk
as a read-only base volume. A positional TARGET (``FLAKE#HOST`` or a ``configuration.nix``)
is built with nix by ``stagingvm.nixbuild.build_target``; that module is imported only
when a TARGET is given, so this verb works (and ``--help`` stays fast) without it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Any

import typer

from stagingvm.cli.state import cli_state
from stagingvm.errors import InvalidInputError, NotFoundError
from stagingvm.names import validate_name


def _base_json(base: Any) -> Any:
    to_json = getattr(base, "to_json", None)
    if callable(to_json):
        return to_json()
    import dataclasses

    if dataclasses.is_dataclass(base) and not isinstance(base, type):
        return dataclasses.asdict(base)
    return {"name": str(base)}


def _base_name(base: Any) -> str:
    return str(getattr(base, "name", base))


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
    image: Annotated[
        Path | None,
        typer.Option("--image", metavar="PATH", help="Import this qcow2 or raw disk image."),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", metavar="NAME", help="Name of the base image to create."),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the base image as JSON on stdout.")
    ] = False,
) -> None:
    """Make a base image that VMs start from.

    With --image, import a ready disk image as a read-only base volume named NAME. With a
    TARGET, build that NixOS configuration with nix and import the result. The base's name
    is printed on stdout.

    Example:

    \b
      pr-test-vm build --image ./nixos.qcow2 --name hermes
      pr-test-vm build .#lazyworkhorse --name hermes
    """
    state = cli_state(ctx)
    if name is not None:
        validate_name(name, what="base image name")
    if target is not None and image is not None:
        raise InvalidInputError(
            "give either a TARGET to build or --image to import, not both",
            hint="`pr-test-vm build --help` shows both forms",
        )
    if target is None and image is None:
        raise InvalidInputError(
            "nothing to build: give a TARGET (FLAKE#HOST) or --image PATH",
            hint="example: pr-test-vm build --image ./nixos.qcow2 --name hermes",
        )

    if image is not None:
        if name is None:
            raise InvalidInputError(
                "--image needs --name",
                hint="example: pr-test-vm build --image disk.qcow2 --name hermes",
            )
        if not image.is_file():
            raise NotFoundError(f"image file {image} does not exist or is not a file")
        manager = state.manager()
        base = manager.import_base(image.resolve(), name)
    else:
        assert target is not None
        try:
            nixbuild = importlib.import_module("stagingvm.nixbuild")
        except ModuleNotFoundError as exc:
            if exc.name != "stagingvm.nixbuild":
                raise
            raise InvalidInputError(
                "nix builds are not available in this version",
                hint="build the image yourself and use `pr-test-vm build --image PATH --name NAME`",
            ) from None
        progress = state.out.progress()
        result = nixbuild.build_target(target, state.settings, name=name, progress=progress)
        base = nixbuild.import_result(result, state.manager(), progress=progress)

    if json_out:
        state.out.json(_base_json(base))
    else:
        state.out.info(f"base image {_base_name(base)} is ready")
        state.out.data(_base_name(base))


def register(app: typer.Typer) -> None:
    app.command("build")(build)
