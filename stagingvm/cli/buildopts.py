"""Options that ``build`` and ``test`` share, declared once: where the image comes from
(``--image``, ``--recipe``) and the nix build's knobs. (``--name`` is not shared: it names the
base image in ``build`` and the VM in ``test``.)"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

NixOptions = Annotated[
    list[str] | None,
    typer.Option("--nix-option", metavar="KEY=VALUE", help="Passed to nix as --option."),
]
NixpkgsPath = Annotated[
    Path | None,
    typer.Option("--nixpkgs", metavar="PATH", help="nixpkgs for a classic configuration."),
]
ImagePath = Annotated[
    Path | None,
    typer.Option(
        "--image", metavar="PATH", help="Use this ready qcow2 or raw disk image (no build)."
    ),
]
RecipeName = Annotated[
    str | None,
    typer.Option(
        "--recipe",
        metavar="RECIPE",
        help="Build this recipe of stagingvm's own image builder (see `pr-test-vm image list`), "
        "e.g. design-b.",
    ),
]
