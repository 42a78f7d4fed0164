"""``list`` and ``status``: what stagingvm owns and how it is doing.

Both print the library's JSON document with ``--json`` (one document on stdout), or a
rendering of that same document for people.
"""

from __future__ import annotations

from typing import Annotated

import typer

from stagingvm.cli import complete, render
from stagingvm.cli.state import cli_state
from stagingvm.names import validate_name


def list_vms(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON list on stdout.")] = False,
) -> None:
    """List the VMs stagingvm owns.

    Other VMs on the host are never shown. Columns: name, state, IP, vCPUs, memory, age
    and base image.

    Example:

    \b
      pr-test-vm list --json | jq -r '.[].name'
    """
    state = cli_state(ctx)
    hosts = state.hosts()
    infos, down = hosts.list()
    if down and (not hosts.several or len(down) == len(hosts.uris)):
        raise down[0][1]  # no host answered: that is an error, not an empty list
    for uri, exc in down:
        state.out.warn(f"host {uri} left out: {exc}")
    docs = [info.to_json() for info in infos]
    if json_out:
        state.out.json(docs)
        return
    if not docs:
        state.out.info("no stagingvm VMs; start one with: pr-test-vm start NAME --base BASE")
        return
    render.print_list(state.out, docs, hosts=state.hosts().several)


def status(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(metavar="NAME", help="Name of the VM.", autocompletion=complete.vm_names),
    ],
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the status as JSON on stdout.")
    ] = False,
) -> None:
    """Show the state, address and metadata of one VM.

    State, IP, MAC, uptime, memory, disk, console log path and the recorded metadata.

    Example:

    \b
      pr-test-vm status pr-42 --json
    """
    validate_name(name)
    state = cli_state(ctx)
    doc = state.manager_for(name).status(name).to_json()
    if json_out:
        state.out.json(doc)
        return
    state.out.data("\n".join(render.status_lines(doc)))


def register(app: typer.Typer) -> None:
    app.command("list")(list_vms)
    app.command("status")(status)
