"""``policy from-module``: the battery's policy for a hardened ai-worker module's spec.

The spec is the JSON the NixOS module ``stagingvm.nixosModules.ai-worker`` exposes as
``stagingvm.aiWorker.spec`` (``nix eval --json``), or the policy lab's
``designfiles/hardened.json``. See docs/hardened-design.md.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from stagingvm.cli.state import cli_state


class Layout(StrEnum):
    nixos = "nixos"
    debian = "debian"


def from_module(
    ctx: typer.Context,
    spec: Annotated[
        Path,
        typer.Argument(
            metavar="SPEC", help="JSON spec: `nix eval --json HOST.config.stagingvm.aiWorker.spec`."
        ),
    ],
    layout: Annotated[
        Layout,
        typer.Option("--layout", help="Where the helper and tools live (nixos: the module's)."),
    ] = Layout.nixos,
) -> None:
    """Print a policy (TOML) whose allow promises are exactly what the spec's module offers.

    Example:

    \b
      nix eval --json .#nixosConfigurations.host.config.stagingvm.aiWorker.spec > spec.json
      pr-test-vm policy from-module spec.json > ai-worker-hardened.toml
      pr-test-vm test .#host --policy ai-worker-hardened.toml
    """
    from stagingvm.checks import hardened, hardpolicy

    paths = hardened.NIXOS_LAB if layout is Layout.nixos else hardened.DEBIAN
    cli_state(ctx).out.data(hardpolicy.policy_toml(hardened.load_spec(spec), paths))


def register(app: typer.Typer) -> None:
    policy = typer.Typer(
        name="policy", help="Policies for the battery, made from a design.", no_args_is_help=True
    )
    policy.command("from-module")(from_module)
    app.add_typer(policy)
