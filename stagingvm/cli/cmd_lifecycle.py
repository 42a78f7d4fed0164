"""``start``, ``stop``, ``destroy``, ``rebuild``: the life of one VM.

Each command parses its options (Typer) and calls one ``Manager`` method, which validates
the name and the options (memory and vCPUs by the settings' rule) before anything is looked
up or created, takes the VM lock, looks the domain up once and cleans up on failure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stagingvm.cli import complete, render
from stagingvm.cli.state import cli_state
from stagingvm.names import validate_name

NameArg = Annotated[
    str,
    typer.Argument(
        metavar="NAME",
        help="Name of the VM.",
        show_default=False,
        autocompletion=complete.vm_names,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the VM's status as JSON on stdout.")]
WaitOpt = Annotated[
    bool,
    typer.Option(
        "--wait/--no-wait",
        help="Wait until SSH login works (phases: running, DHCP lease, SSH banner, login) "
        "and pin the VM's SSH host key (images from stagingvm's builder: the keys it recorded, "
        "pinned before boot); without either, `ssh` refuses the unpinned key.",
    ),
]


def start(
    ctx: typer.Context,
    name: NameArg,
    base: Annotated[
        str | None,
        typer.Option(
            "--base",
            metavar="BASE",
            help="Base image to start from [default: NAME].",
            autocompletion=complete.base_names,
        ),
    ] = None,
    image: Annotated[
        Path | None,
        typer.Option("--image", metavar="PATH", help="Import this disk image as the base first."),
    ] = None,
    wait: WaitOpt = True,
    keep_on_failure: Annotated[
        bool,
        typer.Option(
            "--keep-on-failure", help="Leave the VM and its disk in place if the start fails."
        ),
    ] = False,
    pr_ref: Annotated[
        str | None,
        typer.Option("--pr-ref", metavar="REF", help="PR reference to record, e.g. pull/42/head."),
    ] = None,
    label: Annotated[
        str | None, typer.Option("--label", metavar="TEXT", help="Free-form label to record.")
    ] = None,
    memory: Annotated[
        int | None,
        typer.Option(
            "--memory", metavar="MIB", help="Memory in MiB, 64-1048576 [default: config]."
        ),
    ] = None,
    vcpus: Annotated[
        int | None,
        typer.Option("--vcpus", metavar="N", help="vCPUs, 1-256 [default: config]."),
    ] = None,
    user_keys: Annotated[
        list[str] | None,
        typer.Option(
            "--user-key",
            metavar="USER",
            help="Give guest USER a key of its own (repeatable), e.g. the restricted user "
            "`check` logs in as; `ssh USER@NAME` then uses it.",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Start a new VM from a base image and wait until SSH works.

    The VM gets a copy-on-write overlay of the base (the base is never written), a NAT
    network address and a serial console log. If the start fails, everything it made is
    removed again unless --keep-on-failure. --user-key makes (once) a key pair for a guest
    user in stagingvm's data dir and hands its public half to the guest as the systemd
    credential stagingvm.authorized_keys.USER.

    Example:

    \b
      pr-test-vm start pr-42 --base hermes --pr-ref pull/42/head
      pr-test-vm start lab-b --image design-b.qcow2 --user-key ai-worker
    """
    state = cli_state(ctx)
    validate_name(name)
    on_host = None if image is not None else validate_name(base or name, what="base image name")
    info = state.placement(name, memory, base=on_host).start(
        name,
        base=base,
        image=image,
        wait=wait,
        keep_on_failure=keep_on_failure,
        pr_ref=pr_ref,
        label=label,
        memory=memory,
        vcpus=vcpus,
        user_keys=user_keys or (),
    )
    doc = info.to_json()
    if json_out:
        state.out.json(doc)
        return
    state.out.info(render.started_message(doc, waited=wait))


def stop(
    ctx: typer.Context,
    name: NameArg,
    force: Annotated[
        bool, typer.Option("--force", help="Power off at once instead of an ACPI shutdown.")
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            metavar="SECONDS",
            help="How long to wait for the guest to shut down [default: timeouts.shutdown].",
        ),
    ] = None,
) -> None:
    """Shut a VM down (ACPI); --force powers it off.

    Waits up to --timeout for the guest to power off, then fails with a hint.

    The VM stays defined with its disk: `rebuild` gives it a fresh disk from its base,
    `destroy` removes it.

    Example:

    \b
      pr-test-vm stop pr-42 --timeout 30
    """
    from stagingvm.config.keys import check_value  # Typer's min/max would import Pydantic

    check_value("timeouts.shutdown", timeout, label="--timeout")
    state = cli_state(ctx)
    state.manager_for(name).stop(name, force=force, timeout=timeout)
    state.out.info(f"{name} is shut off")


def destroy(ctx: typer.Context, name: NameArg) -> None:
    """Remove a VM and everything that was made for it.

    Powers it off, undefines it, deletes its disk overlay, console log, known_hosts and
    DHCP host entry.

    Base images are kept. Afterwards nothing of the VM is left.

    Example:

    \b
      pr-test-vm destroy pr-42
    """
    state = cli_state(ctx)
    state.manager_for(name).destroy(name)
    state.out.info(f"{name} is destroyed")


def rebuild(
    ctx: typer.Context, name: NameArg, wait: WaitOpt = True, json_out: JsonOpt = False
) -> None:
    """Start a VM afresh from its base, keeping name, MAC and address.

    The old disk is thrown away; the VM gets a new overlay of the (possibly rebuilt) base.

    Use it after `build` made a new base image of the same name.

    Example:

    \b
      pr-test-vm rebuild pr-42
    """
    state = cli_state(ctx)
    info = state.manager_for(name).rebuild(name, wait=wait)
    doc = info.to_json()
    if json_out:
        state.out.json(doc)
        return
    state.out.info(render.started_message(doc, waited=wait))


def register(app: typer.Typer) -> None:
    app.command("start")(start)
    app.command("stop")(stop)
    app.command("destroy")(destroy)
    app.command("rebuild")(rebuild)
