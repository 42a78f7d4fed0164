"""Where and how to reach a VM over SSH: the one record the SSH layer takes from the VM layer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stagingvm.ssh.jump import JumpHost


@dataclass(frozen=True)
class SSHTarget:
    """Everything needed to open an SSH session to a VM, host key pinning included."""

    host: str
    port: int
    user: str
    key_path: Path
    known_hosts: Path
    jump: JumpHost | None = None
    """The libvirt host to go through (a guest of a remote host); None: connect directly."""
