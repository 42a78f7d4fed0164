"""The one exception hierarchy of stagingvm.

Library code raises these; only the CLI turns them into messages and exit codes.
Each class carries the exit code the CLI uses for it and an optional *hint*: one line
that tells the user how to fix the problem.

Exit codes (documented in docs/cli.md):

====  ===============================================================
0     success (for ``check``/``test``: every restriction held)
1     unexpected internal error (a bug: please report it)
2     bad input: usage, invalid name, invalid config or policy file
3     not found (VM, image, network, pool)
4     libvirt unreachable (libvirtd not running, permission denied)
5     time-out waiting for something (the phase is named)
6     conflict: already exists, busy (lock held), overlapping subnet
7     the guest failed: crashed, shut off or never booted
8     security: SSH host key changed or could not be verified
9     build failed (image builder, nix)
10    restriction violated (``check``/``test``)
11    could not check: infrastructure failed during ``check``/``test``
12    a required host tool is missing (nix, qemu-img, debootstrap, ...)
130   interrupted (Ctrl-C)
====  ===============================================================
"""

from __future__ import annotations


class StagingVMError(Exception):
    """Base of every error stagingvm raises on purpose."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class InvalidInputError(StagingVMError):
    """A name, path, option or file the user gave is not acceptable."""

    exit_code = 2


class ConfigError(InvalidInputError):
    """A configuration file or environment variable is invalid."""


class NotFoundError(StagingVMError):
    """A VM, image, network or pool does not exist."""

    exit_code = 3


class LibvirtUnavailableError(StagingVMError):
    """libvirtd cannot be reached (not running, wrong URI, no permission)."""

    exit_code = 4


class PhaseError(StagingVMError):
    """A wait that ended badly: ``phase`` names what was being waited for, ``elapsed`` how long
    it had waited, ``console_tail`` the guest's last console lines (base of the two below)."""

    def __init__(
        self,
        message: str,
        *,
        phase: str,
        elapsed: float,
        console_tail: list[str] | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.phase = phase
        self.elapsed = elapsed
        self.console_tail = console_tail or []


class WaitTimeoutError(PhaseError):
    """A wait gave up. ``phase`` names what was being waited for."""

    exit_code = 5


class ConflictError(StagingVMError):
    """Something already exists, is busy, or overlaps what we want to create."""

    exit_code = 6


class GuestFailedError(PhaseError):
    """The guest stopped, crashed or never booted while we waited for it."""

    exit_code = 7


class HostKeyError(StagingVMError):
    """An SSH host key changed or could not be verified. Never ignored."""

    exit_code = 8


class BuildError(StagingVMError):
    """An image build (image builder or nix) failed."""

    exit_code = 9

    def __init__(
        self, message: str, *, log_tail: list[str] | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.log_tail = log_tail or []


class RestrictionViolatedError(StagingVMError):
    """A restriction check found a way around the policy (or a promise broken)."""

    exit_code = 10


class CheckInfrastructureError(StagingVMError):
    """A restriction check could not be carried out (the verdict is unknown)."""

    exit_code = 11


class ToolMissingError(StagingVMError):
    """A host tool stagingvm needs is not installed."""

    exit_code = 12


class AcceleratorUnavailableError(ToolMissingError):
    """``accel = kvm`` was asked for, but KVM does not run guests on this host (exit 12)."""


class LabError(StagingVMError):
    """The isolated lab (network namespace + private libvirtd) could not be managed."""

    exit_code = 4


EXIT_INTERRUPTED = 130
