"""The exit codes of each verb: one table that the help, docs/cli.md and the tests all read.

Each row names the code through the error class that carries it (``stagingvm.errors``: the
code is that class's ``exit_code``), says when this verb returns it, and says how the code is
reached for real:

- ``UNIT``: ``tests/unit/cli/test_exit_codes.py`` has a case that reaches it on libvirt's test
  driver, with bad input or a missing VM (a test there fails if a row and a case disagree);
- a pytest node id (``tests/e2e/...::test_...``): only a real VM reaches it, and that existing
  end-to-end test does (checked to exist and to name the code);
- ``E2E``: only a real VM (or a libvirtd doing something stagingvm cannot provoke) reaches it,
  and no test does yet.

``ANY_VERB`` holds the two codes every verb can end with. This module imports only
``stagingvm.errors``: ``--help`` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from stagingvm.errors import (
    EXIT_INTERRUPTED,
    AcceleratorUnavailableError,
    BuildError,
    CheckInfrastructureError,
    ConflictError,
    GuestFailedError,
    HostKeyError,
    InvalidInputError,
    LabError,
    LibvirtUnavailableError,
    NotFoundError,
    RestrictionViolatedError,
    StagingVMError,
    ToolMissingError,
    WaitTimeoutError,
)

UNIT = "unit"
E2E = "e2e"
SSH_STATUS = -1  # not a code: "the remote command's own exit status"

_E2E_GUESTS = "tests/e2e/test_guests.py::"
_E2E_LIFE = "tests/e2e/test_lifecycle.py::"
_E2E_CORE = "tests/e2e/test_core_libvirtd.py::"
_LOCK_BUSY = "tests/unit/test_locks.py::test_second_holder_times_out_with_busy"


@dataclass(frozen=True)
class Code:
    """One exit code of one verb: *code*, *when* the verb returns it, *reach* (see above)."""

    code: int
    when: str
    reach: str = UNIT


def _c(source: type[StagingVMError] | int, when: str, reach: str = UNIT) -> Code:
    return Code(source if isinstance(source, int) else source.exit_code, when, reach)


def _ok(when: str, reach: str = UNIT) -> Code:
    return _c(0, when, reach)


_BAD = InvalidInputError  # exit 2: usage, names, options, config files
_LIBVIRT = _c(LibvirtUnavailableError, "libvirt unreachable (not running, no permission)")
_NO_VM = _c(NotFoundError, "no such VM")
_BUSY = _c(ConflictError, "another stagingvm command holds the VM's lock", _LOCK_BUSY)

ANY_VERB: tuple[Code, ...] = (
    _c(
        1,
        "a bug in stagingvm",
        "tests/unit/cli/test_basic.py::test_unexpected_error_is_reported_as_a_bug",
    ),
    _c(
        EXIT_INTERRUPTED,
        "interrupted (Ctrl-C, SIGTERM); what was made is cleaned up",
        "tests/unit/cli/test_basic.py::test_sigterm_interrupts_like_ctrl_c",
    ),
)

VERBS: dict[str, tuple[Code, ...]] = {
    "build": (
        _ok(
            "the base is ready; its name is on stdout",
            "tests/e2e/test_cli_build_image.py::test_build_image_prints_the_base_name",
        ),
        _c(_BAD, "bad input: name, two forms at once, an option of another form"),
        _c(NotFoundError, "no such image file or recipe"),
        _LIBVIRT,
        _c(ConflictError, "the base's name is being imported by another command", _LOCK_BUSY),
        _c(BuildError, "the nix or image build failed", E2E),
        _c(ToolMissingError, "a host tool is missing (nix, qemu-img, debootstrap)"),
    ),
    "start": (
        _ok("the VM runs (and, unless --no-wait, SSH login works)"),
        _c(_BAD, "bad input: name, --memory, --vcpus, --user-key"),
        _c(NotFoundError, "no such base image or --image file"),
        _LIBVIRT,
        _c(ConflictError, "a VM of that name exists, or its lock is held"),
        _c(
            WaitTimeoutError,
            "a phase of the wait timed out (named)",
            _E2E_GUESTS + "test_guest_without_lease_times_out_naming_the_phase",
        ),
        _c(
            GuestFailedError,
            "the guest stopped or crashed during the wait",
            _E2E_GUESTS + "test_guest_that_powers_off_fails_fast",
        ),
        _c(
            HostKeyError,
            "the guest's host key is not the one recorded",
            "tests/e2e/test_hostkeys_e2e.py::test_a_wrong_recorded_key_is_refused_at_first_contact",
        ),
        _c(BuildError, "importing --image failed (the upload)", E2E),
        _c(AcceleratorUnavailableError, "accel = kvm without KVM, or qemu-img missing (--image)"),
    ),
    "stop": (
        _ok("the VM is shut off"),
        _c(_BAD, "bad input: name, --timeout"),
        _NO_VM,
        _LIBVIRT,
        _c(
            WaitTimeoutError,
            "the guest did not power off within --timeout",
            _E2E_CORE + "test_stop_without_an_os_times_out_with_a_hint_then_force_works",
        ),
        _BUSY,
    ),
    "destroy": (
        _ok("nothing of the VM is left"),
        _c(_BAD, "bad input: name"),
        _NO_VM,
        _LIBVIRT,
        _BUSY,
    ),
    "rebuild": (
        _ok("the VM runs on a fresh overlay of its base"),
        _c(_BAD, "bad input: name"),
        _c(NotFoundError, "no such VM, or its base is gone"),
        _LIBVIRT,
        _BUSY,
        _c(WaitTimeoutError, "a phase of the wait timed out (named)", E2E),
        _c(GuestFailedError, "the guest stopped or crashed during the wait", E2E),
        _c(HostKeyError, "the guest's host key changed", E2E),
    ),
    "snapshot": (
        _ok("the snapshot is taken"),
        _c(_BAD, "bad input: VM or snapshot name"),
        _NO_VM,
        _LIBVIRT,
        _c(ConflictError, "the VM is not running, or its lock is held"),
    ),
    "revert": (
        _ok(
            "the VM runs from the snapshot",
            "tests/e2e/test_snapshots_e2e.py::test_revert_keeps_address_key_and_login",
        ),
        _c(_BAD, "bad input: VM or snapshot name"),
        _c(NotFoundError, "no such VM or snapshot"),
        _LIBVIRT,
        _BUSY,
        _c(WaitTimeoutError, "SSH did not come back in time", E2E),
        _c(GuestFailedError, "the guest stopped or SSH refused the key", E2E),
        _c(HostKeyError, "the guest's host key changed", E2E),
    ),
    "ssh": (
        _c(
            SSH_STATUS,
            "the remote command's own exit status (0-255)",
            _E2E_LIFE + "test_ssh_keeps_exit_status_stdout_and_stderr_apart",
        ),
        _c(_BAD, "bad input: name or user"),
        _c(NotFoundError, "no such VM, or it has no address (not running)"),
        _LIBVIRT,
        _c(GuestFailedError, "no SSH connection, or the key was refused", E2E),
        _c(
            HostKeyError,
            "the host key is not the pinned one",
            _E2E_GUESTS + "test_changed_host_key_is_refused",
        ),
    ),
    "console": (
        _ok("the console was left (Ctrl+]) or the log printed"),
        _c(_BAD, "bad input: name"),
        _c(NotFoundError, "no such VM, or no console log"),
        _LIBVIRT,
        _c(GuestFailedError, "the VM is not running (no console to attach)", E2E),
    ),
    "ssh-config": (
        _ok("the config blocks (or inventory) are on stdout"),
        _c(_BAD, "bad input: name or user"),
        _c(NotFoundError, "no such VM, or it has no address"),
        _LIBVIRT,
    ),
    "scp": (
        _ok("the file is copied", "tests/e2e/test_sshconfig_e2e.py::test_scp_both_ways"),
        _c(_BAD, "bad input: no or two remote sides, an unreadable local file"),
        _c(NotFoundError, "no such VM, or it has no address"),
        _LIBVIRT,
        _c(GuestFailedError, "no SSH connection, or the key was refused", E2E),
        _c(HostKeyError, "the host key is not the pinned one", E2E),
        _c(
            SSH_STATUS,
            "the copy failed in the guest: its cat's status",
            "tests/e2e/test_sshconfig_e2e.py::test_scp_both_ways",
        ),
    ),
    "list": (
        _ok("the table or the JSON list is on stdout"),
        _c(_BAD, "bad input: an unknown option, a bad config"),
        _LIBVIRT,
    ),
    "status": (
        _ok("the status is on stdout"),
        _c(_BAD, "bad input: name"),
        _NO_VM,
        _LIBVIRT,
    ),
    "config": (
        _ok("the settings are on stdout"),
        _c(_BAD, "an invalid config file or STAGINGVM_* variable"),
    ),
    "check": (
        _ok("every restriction held", E2E),
        _c(_BAD, "bad input: name, policy, --family, a report path"),
        _c(NotFoundError, "no such VM, no address, or (--reset) no snapshot `ready`"),
        _LIBVIRT,
        _c(WaitTimeoutError, "--reset: SSH did not come back in time", E2E),
        _c(ConflictError, "--reset: another command holds the VM's lock", _LOCK_BUSY),
        _c(GuestFailedError, "--reset: the guest stopped during the wait", E2E),
        _c(HostKeyError, "the VM's host key changed", E2E),
        _c(
            RestrictionViolatedError,
            "a restriction was violated",
            "tests/e2e/test_checks_lab.py::test_design_a_fails_for_several_independent_reasons",
        ),
        _c(
            CheckInfrastructureError,
            "could not check (SSH, set-up or oracle failed)",
            "tests/e2e/test_snapshots_e2e.py::test_check_reset_reverts_before_running",
        ),
    ),
    "setup": (
        _ok("the network and the pool are ready"),
        _c(_BAD, "bad input: an unknown option, a bad config"),
        _LIBVIRT,
        _c(ConflictError, "the subnet overlaps a host route, or a lock is held"),
    ),
    "test": (
        _ok("every restriction held", E2E),
        _c(_BAD, "bad input before anything is built: forms, policy, name, paths"),
        _c(NotFoundError, "no such --image file or --recipe"),
        _c(
            RestrictionViolatedError,
            "a restriction was violated",
            "tests/e2e/test_checks_lab.py::test_design_b_fails_through_pr_test_vm_test",
        ),
        _c(CheckInfrastructureError, "no verdict: libvirt, build, boot or check failed, time-out"),
    ),
    "gc": (
        _ok("nothing is left to remove (or, without --yes, the list of what would go)"),
        _c(1, "a removal failed (the messages say which)", E2E),
        _c(_BAD, "bad input: --yes with --dry-run, an --older-than that is no age"),
        _LIBVIRT,
    ),
    "help": (
        _ok("the page (or the list of topics) is on stdout"),
        _c(_BAD, "bad input: an unknown option"),
        _c(NotFoundError, "no such topic"),
    ),
    "lab up": (
        _ok("the lab is up", E2E),
        _c(_BAD, "bad input: namespace name"),
        _c(
            LabError,
            "a libvirtd runs outside the namespace, or the lab failed",
            "tests/e2e/test_lab.py::test_up_refuses_when_libvirtd_runs_elsewhere",
        ),
        _c(ToolMissingError, "ip, libvirtd or virtlogd is missing", E2E),
    ),
    "lab down": (
        _ok("the lab is down; what is left is named", E2E),
        _c(_BAD, "bad input: namespace name"),
        _c(ConflictError, "VMs still run (use --force)", E2E),
        _c(LabError, "the lab could not be taken down", E2E),
    ),
    "lab status": (
        _ok("the status is on stdout"),
        _c(_BAD, "bad input: namespace name"),
    ),
    "lab exec": (
        _c(
            SSH_STATUS,
            "the command's own exit status",
            "tests/e2e/test_lab.py::test_lab_exec_hands_signals_to_the_job_and_waits_for_it",
        ),
        _c(_BAD, "bad input: no command, namespace name"),
        _c(LabError, "the lab's namespace does not exist"),
    ),
    "image build": (
        _ok("the image is ready; its path is on stdout", E2E),
        _c(_BAD, "bad input: an unknown option, a bad config"),
        _c(NotFoundError, "no such recipe"),
        _c(ConflictError, "another command builds the same recipe", _LOCK_BUSY),
        _c(BuildError, "the build failed (the log's tail is shown)", E2E),
        _c(
            ToolMissingError,
            "debootstrap, qemu-img or another tool is missing",
            "tests/unit/images/test_cache.py::test_missing_tools_are_named_with_their_package",
        ),
    ),
    "policy from-module": (
        _ok("the policy (TOML) is on stdout"),
        _c(_BAD, "the spec is missing, unreadable, too big or not an allowed spec"),
    ),
    "image list": (
        _ok("the list is on stdout"),
        _c(_BAD, "bad input: an unknown option, a bad config"),
    ),
    "image rm": (
        _ok("the image's cache entries are removed"),
        _c(_BAD, "bad input: an unknown option, a bad config"),
        _c(NotFoundError, "no such cached image"),
        _c(ConflictError, "another command builds or removes it", _LOCK_BUSY),
    ),
}


def codes_of(verb: str) -> tuple[Code, ...]:
    """Every code *verb* (``"lab up"`` for a sub-command) can exit with, ``ANY_VERB`` last."""
    return tuple(sorted((*VERBS[verb], *ANY_VERB), key=lambda c: c.code))


def label(code: int) -> str:
    """How *code* is shown: ``N`` for "the remote command's own status"."""
    return "N" if code == SSH_STATUS else str(code)


def epilog(verb: str) -> str:
    """The "Exit codes" section of *verb*'s help (Click keeps ``\\b`` blocks as they are)."""
    lines = [f"  {label(c.code):<4} {c.when}" for c in codes_of(verb)]
    return "Exit codes:\n\n\b\n" + "\n".join(lines)
