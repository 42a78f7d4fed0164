"""Options that ``build`` and ``test`` share for nix builds, declared once."""

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
