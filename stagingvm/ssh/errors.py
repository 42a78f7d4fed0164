"""The SSH layer's errors, and paramiko's logging kept quiet: shared by the guest sessions
(``stagingvm.ssh.client``) and the connections to libvirt hosts (``stagingvm.ssh.jump``)."""

from __future__ import annotations

import logging

from stagingvm.errors import StagingVMError


class SSHError(StagingVMError):
    """The guest's SSH server could not be used (exit code 7: the guest is not usable)."""

    exit_code = 7


class SSHConnectError(SSHError):
    """No SSH connection: refused, unreachable, timed out, or dropped mid-way."""


class SSHAuthError(SSHError):
    """The guest refused stagingvm's key for that user."""


def quiet_paramiko() -> None:
    """paramiko logs refused channel opens (which we retry) as errors; with no handler set up,
    Python's last-resort handler would print them. A library does not print: a NullHandler
    keeps them quiet unless the application configures logging (``--debug``)."""
    logger = logging.getLogger("paramiko")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
