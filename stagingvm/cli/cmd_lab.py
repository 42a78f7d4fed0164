"""``lab up|down|status|exec``: the isolated lab (network namespace + private libvirtd).

Only for machines where VM networks must not touch the host network (CI, the project's build
machines, a bare Debian box running the demo). A normal NixOS host with libvirtd from systemd
does not need it. See docs/lab.md.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from stagingvm.cli.output import Output
from stagingvm.cli.state import cli_state

NamespaceOption = Annotated[
    str,
    typer.Option(
        "--namespace",
        "-n",
        envvar="STAGINGVM_LAB_NAMESPACE",
        help="Name of the lab's network namespace.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]

DEFAULT_NAMESPACE = "stagingvm-lab"  # same as stagingvm.lab.lab.DEFAULT_NAMESPACE (not imported:
# the lab modules pull in libvirt, and --help must stay fast)


def _print_status(out: Output, doc: dict[str, Any]) -> None:
    lines = [
        f"namespace:  {doc['namespace']} ({'present' if doc['namespace_exists'] else 'missing'})",
    ]
    for d in doc["daemons"]:
        where = "inside" if d["in_namespace"] else "OUTSIDE the namespace"
        what = f"pid {d['pid']}, {where}" if d["running"] else "not running"
        action = f" [{d['action']}]" if d.get("action") else ""
        lines.append(f"{d['name'] + ':':<12}{what}{action}")
    answer = (
        f"answers (libvirt {doc['libvirt_version']})" if doc["libvirt_answers"] else "no answer"
    )
    lines.append(f"{'socket:':<12}{doc['socket']}: {answer}")
    for n in doc["networks"]:
        state = "active" if n["active"] else "inactive"
        auto = ", autostart" if n["autostart"] else ""
        lines.append(f"{'network:':<12}{n['name']} ({state}{auto}, bridge {n['bridge']})")
    lines.append(f"{'ready:':<12}{'yes' if doc['ready'] else 'no'}")
    out.data("\n".join(lines))
    for note in doc["notes"]:
        out.info(note)


def lab_up(
    ctx: typer.Context, namespace: NamespaceOption = DEFAULT_NAMESPACE, json_out: JsonOption = False
) -> None:
    """Create the lab, or adopt the one that runs: namespace, virtlogd, libvirtd.

    Idempotent. Refuses when a libvirtd already runs outside the namespace (its VM
    bridges would be on the host network).

    Example:

    \b
      pr-test-vm lab up && pr-test-vm lab exec -- pr-test-vm start demo --base tiny
    """
    from stagingvm.lab import lab

    state = cli_state(ctx)
    result = lab.up(namespace, progress=state.out.progress())
    if json_out:
        state.out.json(result.to_json())
    else:
        _print_status(state.out, result.to_json())


def lab_down(
    ctx: typer.Context,
    namespace: NamespaceOption = DEFAULT_NAMESPACE,
    force: Annotated[
        bool, typer.Option("--force", help="Go ahead even though VMs still run (left unmanaged).")
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Stop the lab's libvirtd and virtlogd and delete its namespace.

    VMs are not destroyed (use `pr-test-vm destroy`); with VMs running it refuses unless
    --force. Says what is left behind.

    Example:

    \b
      pr-test-vm lab down
    """
    from stagingvm.lab import lab

    state = cli_state(ctx)
    report = lab.down(namespace, force=force, progress=state.out.progress())
    doc = report.to_json()
    if json_out:
        state.out.json(doc)
        return
    for d in doc["stopped"]:
        state.out.info(f"stopped {d['name']} (pid {d['pid']})")
    gone = "deleted" if doc["namespace_deleted"] else "was not there"
    state.out.info(f"namespace {namespace}: {gone}")
    for line in doc["left"]:
        state.out.info(f"left: {line}")


def lab_status(
    ctx: typer.Context, namespace: NamespaceOption = DEFAULT_NAMESPACE, json_out: JsonOption = False
) -> None:
    """Show the lab: namespace, daemons and their pids, the socket, libvirt's networks.

    Example:

    \b
      pr-test-vm lab status --json | jq .ready
    """
    from stagingvm.lab import lab

    state = cli_state(ctx)
    doc = lab.status(namespace).to_json()
    if json_out:
        state.out.json(doc)
    else:
        _print_status(state.out, doc)


def lab_exec(
    namespace: NamespaceOption = DEFAULT_NAMESPACE,
    command: Annotated[
        list[str] | None, typer.Argument(metavar="-- CMD...", help="The command to run.")
    ] = None,
) -> None:
    """Run a command inside the lab's network namespace; its exit status is ours.

    Everything that talks to a VM's address (ssh, the tests, the benchmark) must run there.

    Example:

    \b
      pr-test-vm lab exec -- pr-test-vm ssh demo -- uname -a
    """
    from stagingvm.errors import InvalidInputError, LabError
    from stagingvm.lab import netns
    from stagingvm.lab.execute import run_in_namespace

    if not command:
        raise InvalidInputError("no command given", hint="pr-test-vm lab exec -- CMD [ARGS...]")
    if not netns.exists(namespace):
        raise LabError(f"the lab namespace {namespace!r} does not exist", hint="pr-test-vm lab up")
    raise typer.Exit(run_in_namespace(namespace, command))


def register(app: typer.Typer) -> None:
    lab = typer.Typer(
        name="lab",
        help="The isolated lab: a network namespace with its own libvirtd (CI, bare Debian).",
        no_args_is_help=True,
    )
    lab.command("up")(lab_up)
    lab.command("down")(lab_down)
    lab.command("status")(lab_status)
    lab.command(
        "exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
    )(lab_exec)
    app.add_typer(lab)
