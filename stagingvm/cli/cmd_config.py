"""``config``: the effective settings and where each value came from."""

from __future__ import annotations

from typing import Annotated

import typer

from stagingvm.cli import render
from stagingvm.cli.state import cli_state


def config(
    ctx: typer.Context,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print settings and sources as JSON on stdout.")
    ] = False,
) -> None:
    """Show the effective settings and the source of each value.

    Sources, lowest first: default, /etc/stagingvm/config.toml, the user's
    ~/.config/stagingvm/config.toml (or --config FILE), LIBVIRT_DEFAULT_URI (for uri),
    STAGINGVM_* variables, flags.

    Example:

    \b
      STAGINGVM_MEMORY=4096 pr-test-vm config
    """
    state = cli_state(ctx)
    doc = state.loaded().to_json()
    if json_out:
        state.out.json(doc)
        return
    files = doc["files"]
    if files:
        state.out.info("config files read: " + ", ".join(files))
    else:
        state.out.info("config files read: none (looked for " + ", ".join(doc["searched"]) + ")")
    render.print_config(state.out, doc)


def register(app: typer.Typer) -> None:
    app.command("config")(config)
