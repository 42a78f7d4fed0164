"""``ssh-config`` and ``scp``: use a VM with OpenSSH, rsync, Ansible, or copy files to and from it.

``ssh-config`` prints OpenSSH ``Host`` blocks (like ``vagrant ssh-config``) that pin the VM's
host keys with ``StrictHostKeyChecking yes``; port forwards and sftp are OpenSSH's own through
it. ``scp`` copies one file over stagingvm's own pinned connection, so it also works against
guests without an sftp or scp server (Dropbear images).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stagingvm.cli import complete
from stagingvm.cli.cmd_access import split_target
from stagingvm.cli.state import cli_state
from stagingvm.errors import InvalidInputError

COPY_TIMEOUT = 3600.0  # seconds: a copy is bounded, as every command is


def ssh_config(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[NAME]...",
            help="VMs to print; default: every running VM with an address.",
            show_default=False,
            autocompletion=complete.vm_names,
        ),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", "-u", metavar="USER", help="Log in as USER [default: ssh.user]."),
    ] = None,
    ansible: Annotated[
        bool, typer.Option("--ansible", help="Print an Ansible inventory (JSON) instead.")
    ] = False,
) -> None:
    """Print OpenSSH config blocks for VMs, as `vagrant ssh-config` does.

    Each block names the VM's address, the user, stagingvm's key and the VM's own
    known_hosts with StrictHostKeyChecking yes: OpenSSH checks the host keys stagingvm
    pinned and refuses any other. Use it for ssh, scp, sftp, rsync, port forwards and
    Ansible (--ansible prints an inventory that pins the same way).

    Example:

    \b
      ssh -F <(pr-test-vm ssh-config pr-42) pr-42
      ssh -F <(pr-test-vm ssh-config pr-42) -N -L 8080:localhost:80 pr-42
      rsync -e "ssh -F $HOME/.ssh/stagingvm" -a src/ pr-42:/tmp/src/
    """
    from stagingvm.ssh import sshconfig

    state = cli_state(ctx)
    if user is not None:
        split_target(f"{user}@x")  # the same check as ssh USER@NAME
    entries = []
    if names:
        for name in names:
            target_user, vm = split_target(name)
            target = state.manager_for(vm).ssh_target(vm, target_user or user)
            entries.append(sshconfig.HostEntry(vm, target))
    else:
        hosts = state.hosts()
        infos, down = hosts.list()
        if down and not hosts.several:
            raise down[0][1]
        for uri, exc in down:
            state.out.warn(f"host {uri} left out: {exc}")
        for info in infos:
            if not info.ip:
                state.out.warn(f"{info.name} has no address ({info.state}): left out")
                continue
            manager = hosts.manager(info.host or hosts.uris[0])
            entries.append(sshconfig.HostEntry(info.name, manager.ssh_target(info.name, user)))
    if ansible:
        state.out.json(sshconfig.ansible_inventory(entries))
        return
    if entries:
        state.out.data(sshconfig.ssh_config(entries))


def _remote(spec: str) -> tuple[str | None, str, str] | None:
    """``[USER@]NAME:PATH`` -> ``(user, name, path)``; None for a local path."""
    head, sep, path = spec.partition(":")
    if not sep or "/" in head:
        return None
    if not path:
        raise InvalidInputError(f"no remote path in {spec!r}", hint="write NAME:PATH")
    user, name = split_target(head)
    return user, name, path


def scp(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(metavar="SOURCE", help="LOCAL or [USER@]NAME:PATH.")],
    dest: Annotated[str, typer.Argument(metavar="DEST", help="LOCAL or [USER@]NAME:PATH.")],
) -> None:
    """Copy one file to or from a VM, over the VM's pinned SSH connection.

    Exactly one of SOURCE and DEST is on the VM, written NAME:PATH or USER@NAME:PATH.
    The host key is checked as for ssh (exit 8 if it changed). Works on guests without an
    sftp or scp server; for directories and many files, use rsync through ssh-config.

    Example:

    \b
      pr-test-vm scp ./fix.sh pr-42:/tmp/fix.sh
      pr-test-vm scp ai-worker@pr-42:/var/log/probe.log .
    """
    src, dst = _remote(source), _remote(dest)
    if (src is None) == (dst is None):
        raise InvalidInputError(
            "exactly one of SOURCE and DEST must be on a VM (NAME:PATH)",
            hint="e.g. `pr-test-vm scp ./f pr-42:/tmp/f` or `pr-test-vm scp pr-42:/etc/hostname .`",
        )
    remote = src or dst
    assert remote is not None
    user, name, path = remote
    state = cli_state(ctx)
    target = state.manager_for(name).ssh_target(name, user)
    from stagingvm.ssh.client import GuestSSH  # paramiko: only now

    if dst is not None:  # upload
        local = Path(source)
        try:
            data = local.read_bytes()
        except OSError as exc:
            raise InvalidInputError(f"cannot read {local}: {exc.strerror}") from None
        # A fixed script; the path is its argument, never part of the script.
        argv = ["sh", "-c", 'cat > "$1"', "sh", path]
        with GuestSSH.to(target) as conn:
            result = conn.run(argv, timeout=COPY_TIMEOUT, stdin=data)
    else:
        with GuestSSH.to(target) as conn:
            result = conn.run(["cat", "--", path], timeout=COPY_TIMEOUT)
    if not result.ok:
        reason = result.stderr.decode(errors="replace").strip() or f"status {result.exit_status}"
        state.out.error(f"copy failed on {name}: {reason}")
        raise typer.Exit(result.exit_status if result.exit_status > 0 else 1)
    if src is not None:
        local = Path(dest)
        if local.is_dir():
            local = local / Path(path).name
        try:
            local.write_bytes(result.stdout)
        except OSError as exc:
            raise InvalidInputError(f"cannot write {local}: {exc.strerror}") from None


def register(app: typer.Typer) -> None:
    app.command("ssh-config")(ssh_config)
    app.command("scp")(scp)
