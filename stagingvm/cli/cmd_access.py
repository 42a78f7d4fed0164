"""``ssh`` and ``console``: get into a running VM.

``ssh`` verifies the guest's host key against the VM's own known_hosts (never turned off)
and exits with the remote command's exit status. ``console`` attaches the local terminal to
the serial console through a libvirt stream, or prints the captured log with ``--log``.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from stagingvm.cli import complete
from stagingvm.cli.state import cli_state
from stagingvm.errors import InvalidInputError, NotFoundError
from stagingvm.names import validate_name


def split_target(target: str) -> tuple[str | None, str]:
    """``[USER@]NAME`` -> ``(user or None, name)``, both validated."""
    user, sep, name = target.rpartition("@")
    if not sep:
        return None, validate_name(target)
    validate_name(name)
    from stagingvm.config.keys import SPECS_BY_KEY

    check = SPECS_BY_KEY["ssh.user"].check
    assert check is not None
    problem = check(user)
    if problem is not None:
        raise InvalidInputError(f"invalid user in {target!r}: {problem}")
    return user, name


def ssh(
    ctx: typer.Context,
    target: Annotated[
        str,
        typer.Argument(
            metavar="[USER@]NAME",
            help="VM to log in to.",
            show_default=False,
            autocompletion=complete.vm_names,
        ),
    ],
    command: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="COMMAND",
            help="After --: run this command instead of a shell and exit with its status.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Log in to a VM over SSH, or run one command there.

    The address comes from the VM's DHCP lease; the host key is checked against the key
    recorded when the VM was started (a changed key is refused, exit 8). Without a command
    you get an interactive shell; with one, its output and exit status.

    Example:

    \b
      pr-test-vm ssh pr-42
      pr-test-vm ssh ai-worker@pr-42 -- sudo -n -l
    """
    user, name = split_target(target)
    state = cli_state(ctx)
    ssh_target = state.manager_for(name).ssh_target(name, user)

    from stagingvm.ssh.client import GuestSSH  # paramiko: only now

    with GuestSSH.to(ssh_target) as conn:
        status = conn.interactive(remote_argv(command))
    raise typer.Exit(status)


def remote_argv(command: list[str] | None) -> list[str] | None:
    """The remote command from what follows NAME, or None for an interactive shell.

    With interspersed arguments off, click hands the ``--`` separator through as the first
    word; it is ours, not the guest's (the guest's ``sh -c`` would get no script).
    """
    words = list(command or ())
    if words[:1] == ["--"]:
        words = words[1:]
    return words or None


def console(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME", help="VM whose console to attach.", autocompletion=complete.vm_names
        ),
    ],
    log: Annotated[
        bool, typer.Option("--log", help="Print the captured console log instead of attaching.")
    ] = False,
) -> None:
    """Attach to a VM's serial console, or print its log.

    The console is attached to this terminal in raw mode; Ctrl+] leaves. With --log the
    console output captured since the VM started is printed on stdout instead.

    Example:

    \b
      pr-test-vm console pr-42
      pr-test-vm console pr-42 --log | tail -n 50
    """
    validate_name(name)
    state = cli_state(ctx)
    if log:
        from stagingvm.virt.connection import is_remote
        from stagingvm.vm.host import console_log_path

        settings = state.manager_for(name).settings if state.hosts().several else state.settings
        path = console_log_path(settings, name)
        if is_remote(settings.uri):
            raise NotFoundError(
                f"the console log of {name} is kept on its libvirt host ({path} there)",
                hint=f"attach to the console itself (`pr-test-vm console {name}`), or read "
                "that file on the host",
            )
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(
                f"no console log for {name} ({path})",
                hint="the log exists once the VM was started; `pr-test-vm list` shows VMs",
            ) from None
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return

    manager = state.manager_for(name)
    manager.status(name)  # NotFoundError before we say "Connected"
    from stagingvm.virt import console as serial  # libvirt streams: only now

    state.out.info(
        f"Connected to {name}'s serial console; press {serial.ESCAPE_NAME} to leave", always=True
    )
    reason = serial.attach(manager.settings.uri, name)
    if reason == "closed":
        state.out.info(f"the console of {name} was closed (the guest stopped?)")


def register(app: typer.Typer) -> None:
    # Everything after NAME belongs to the remote command, options included.
    app.command("ssh", context_settings={"allow_interspersed_args": False})(ssh)
    app.command("console")(console)
