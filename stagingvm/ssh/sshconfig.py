"""OpenSSH client configuration for stagingvm's VMs, as ``vagrant ssh-config`` prints it.

One ``Host`` block per VM names the address, the user, stagingvm's key and the VM's own
known_hosts file with ``StrictHostKeyChecking yes``: OpenSSH (ssh, scp, sftp, rsync -e,
ansible) then checks the very keys stagingvm pinned, and refuses any other. Nothing here
ever writes ``StrictHostKeyChecking no`` or ``accept-new``.

A guest of a remote libvirt host gets ``ProxyJump user@host[:port]`` (the host of the
``qemu+ssh://`` URI or ``[remote] jump``): OpenSSH goes through that host with the user's own
ssh setup (keys, ``~/.ssh/known_hosts``), which is what libvirt's ``qemu+ssh`` transport uses
too; stagingvm's own connections pin the host in ``<data_dir>/hosts/known_hosts``.

Values are quoted for OpenSSH's config parser; a value it cannot represent (a double quote
or a line break in a path) is refused rather than written wrongly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stagingvm.errors import InvalidInputError
from stagingvm.names import validate_name
from stagingvm.ssh.target import SSHTarget


@dataclass(frozen=True)
class HostEntry:
    """One VM as OpenSSH will know it: *alias* (the VM's name) and how to reach it."""

    alias: str
    target: SSHTarget


def _value(text: str, what: str) -> str:
    """*text* as one OpenSSH config argument: quoted when it holds blanks or ``#``."""
    if not text or any(ch in text for ch in '"\n\r\0'):
        raise InvalidInputError(
            f"cannot write {what} {text!r} into an OpenSSH config",
            hint="OpenSSH config values cannot hold double quotes or line breaks: "
            "use a path without them",
        )
    if any(ch.isspace() or ch in "#'\\" for ch in text):
        return f'"{text}"'
    return text


def host_block(entry: HostEntry) -> str:
    """The ``Host`` block for one VM (ends with a newline)."""
    alias = validate_name(entry.alias)
    t = entry.target
    options = [
        ("HostName", t.host),
        ("Port", str(t.port)),
        ("User", t.user),
        ("IdentityFile", _value(str(t.key_path), "key path")),
        ("IdentitiesOnly", "yes"),
        ("UserKnownHostsFile", _value(str(t.known_hosts), "known_hosts path")),
        ("GlobalKnownHostsFile", "/dev/null"),
        ("StrictHostKeyChecking", "yes"),
        ("PasswordAuthentication", "no"),
        ("KbdInteractiveAuthentication", "no"),
        ("LogLevel", "ERROR"),
    ]
    if t.jump is not None:
        options.append(("ProxyJump", _value(t.jump.spec, "jump host")))
    lines = [f"Host {alias}"] + [f"  {key} {value}" for key, value in options]
    return "\n".join(lines) + "\n"


def ssh_config(entries: Sequence[HostEntry]) -> str:
    """Every VM's block, separated by blank lines, in the order given."""
    return "\n".join(host_block(entry) for entry in entries)


def ansible_inventory(entries: Sequence[HostEntry]) -> dict[str, object]:
    """An Ansible YAML/JSON inventory: group ``stagingvm``, one host per VM, same pinning."""
    hosts: dict[str, object] = {}
    for entry in entries:
        t = entry.target
        hosts[validate_name(entry.alias)] = {
            "ansible_host": t.host,
            "ansible_port": t.port,
            "ansible_user": t.user,
            "ansible_ssh_private_key_file": str(t.key_path),
            "ansible_ssh_common_args": " ".join(
                [
                    "-o IdentitiesOnly=yes",
                    f"-o UserKnownHostsFile={_value(str(t.known_hosts), 'known_hosts path')}",
                    "-o GlobalKnownHostsFile=/dev/null",
                    "-o StrictHostKeyChecking=yes",
                    *([f"-o ProxyJump={_value(t.jump.spec, 'jump host')}"] if t.jump else []),
                ]
            ),
        }
    return {"all": {"children": {"stagingvm": {"hosts": hosts}}}}
