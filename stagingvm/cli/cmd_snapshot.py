"""``snapshot`` and ``revert``: keep a ready VM's state and go back to it in seconds.

Each validates its names before anything is read, then calls ``stagingvm.vm.snapshots``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from stagingvm.cli.state import cli_state
from stagingvm.names import validate_name

READY = (
    "ready"  # the same default as stagingvm.vm.snapshots.READY (not imported: --help stays light)
)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="Name of the VM.", show_default=False)]


def snapshot(
    ctx: typer.Context,
    name: NameArg,
    snap: Annotated[
        str, typer.Option("--name", metavar="SNAPSHOT", help="Name of the snapshot.")
    ] = READY,
    json_out: Annotated[bool, typer.Option("--json", help="Print the snapshot as JSON.")] = False,
) -> None:
    """Snapshot a running VM, disk and memory, to go back to with `revert`.

    An internal qcow2 snapshot in the VM's own overlay (libvirt's snapshot API): nothing is
    kept beside it, and `destroy` removes it with the VM. A snapshot of that name is replaced.

    Example:

    \b
      pr-test-vm snapshot lab-b
      pr-test-vm snapshot lab-b --name before-upgrade
    """
    validate_name(name)
    validate_name(snap, what="snapshot name")
    from stagingvm.vm import snapshots

    state = cli_state(ctx)
    taken = snapshots.create(state.manager_for(name), name, snap)
    if json_out:
        state.out.json(taken.to_json())
        return
    state.out.info(f"{name}: snapshot {snap} taken; `pr-test-vm revert {name} {snap}` goes back")


def revert(
    ctx: typer.Context,
    name: NameArg,
    snap: Annotated[
        str, typer.Argument(metavar="[SNAPSHOT]", help="Snapshot to go back to.")
    ] = READY,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait",
            help="Wait until SSH login works again (pinned host key only), then set the "
            "guest's clock to the host's.",
        ),
    ] = True,
) -> None:
    """Bring a VM back to a snapshot, running, with its address and host key.

    The guest continues from the moment of the snapshot: what happened since is gone.

    Example:

    \b
      pr-test-vm revert lab-b
      pr-test-vm revert lab-b before-upgrade
    """
    validate_name(name)
    validate_name(snap, what="snapshot name")
    from stagingvm.vm import snapshots

    state = cli_state(ctx)
    snapshots.revert(state.manager_for(name), name, snap, wait=wait)
    state.out.info(f"{name} is back at snapshot {snap}")


def register(app: typer.Typer) -> None:
    app.command("snapshot")(snapshot)
    app.command("revert")(revert)
