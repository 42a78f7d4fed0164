"""``gc``: find, and with --yes remove, what crashed or killed runs left behind."""

from __future__ import annotations

from typing import Annotated

import typer

from stagingvm.cli.state import cli_state
from stagingvm.errors import InvalidInputError, StagingVMError


class LeftoversRemain(StagingVMError):
    """Some leftovers could not be removed (exit 1)."""


def gc(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", help="Remove what was found.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show what would be removed (the default).")
    ] = False,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            metavar="AGE",
            help="Also remove stagingvm VMs created longer ago than AGE (90s, 30m, 2h, 7d).",
        ),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print what was found and removed as JSON on stdout.")
    ] = False,
) -> None:
    """Find and remove what crashed or killed runs left behind.

    Looks for VMs whose start never finished (the command was killed), with --older-than
    also VMs older than that; KVM probe domains whose prober is gone; overlay volumes of VMs
    that are gone and base volumes no record names and no VM uses; temporary files and
    qemu-img processes of killed imports; DHCP host entries and VM directories of VMs that
    are gone. Anything a running stagingvm command holds (its lock) is left alone and shown
    as busy. Without --yes nothing is changed.

    Example:

    \b
      pr-test-vm gc --dry-run
      pr-test-vm gc --yes --older-than 1d
    """
    if yes and dry_run:
        raise InvalidInputError("--yes and --dry-run contradict each other: pick one")
    from stagingvm.vm import gc as vmgc

    age = vmgc.parse_duration(older_than) if older_than is not None else None
    state = cli_state(ctx)
    report = vmgc.collect(state.manager().host, older_than=age, dry_run=not yes)
    if json_out:
        state.out.json(report.to_json())
    else:
        verb = "removed" if yes else "would remove"
        done = {id(item) for item in report.removed}
        for item in report.found:
            if yes and id(item) not in done:
                continue
            state.out.data(f"{verb} {item.kind} {item.name}: {item.reason}")
        for item, error in report.failed:
            state.out.warn(f"could not remove {item.kind} {item.name}: {error}")
        for what in sorted(report.busy):
            state.out.info(f"left alone (in use): {what}")
        if not report.found:
            state.out.info("nothing to clean up")
        elif not yes:
            state.out.info("run `pr-test-vm gc --yes` to remove these")
    if report.failed:
        raise LeftoversRemain(
            f"{len(report.failed)} leftover(s) could not be removed",
            hint="see the messages above; run `pr-test-vm gc --yes` again",
        )


def register(app: typer.Typer) -> None:
    app.command("gc")(gc)
