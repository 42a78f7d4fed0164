"""``pr-test-vm setup``: prepare the host (network and storage pool) ahead of time."""

from __future__ import annotations

from typing import Annotated

import typer

from stagingvm.cli.state import cli_state


def setup(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Define and start stagingvm's NAT network and storage pool (idempotent).

    Run by the NixOS module's stagingvm-setup.service at boot; `start` and `build` do the
    same on demand. An existing network or pool is never redefined: differences from the
    settings are reported instead.

    Example:

    \b
      pr-test-vm setup --json
    """
    from stagingvm.vm.setup import ensure_host

    state = cli_state(ctx)
    result = ensure_host(state.settings, progress=state.out.progress())
    for line in result.drift:
        state.out.warn(line)
    if json_out:
        state.out.json(result.to_json())
    else:
        state.out.info(
            f"network {result.network} ({result.subnet}) and pool {result.pool} "
            f"({result.pool_path}) are ready"
        )


def register(app: typer.Typer) -> None:
    app.command("setup")(setup)
