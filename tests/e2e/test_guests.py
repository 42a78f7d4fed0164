"""Several guests, guests that fail, and a changed host key (library Manager and CLI)."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from stagingvm.errors import GuestFailedError, WaitTimeoutError
from stagingvm.settings import Timeouts
from stagingvm.vm.manager import Manager
from tests.e2e.harness import Run, base


def test_two_vms_at_once(run: Run, manager: Manager, tiny_base: str, shared_vm: str) -> None:
    second = run.vm_name("second")
    errors: list[BaseException] = []

    def start() -> None:
        try:
            manager.start(second, base=tiny_base)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=start)
    thread.start()
    try:
        thread.join(timeout=900)
        assert not errors, errors
        one, two = manager.status(shared_vm), manager.status(second)
        assert one.running and two.running
        assert one.ip and two.ip and one.ip != two.ip and one.mac != two.mac
        names = {info.name for info in manager.list()}
        assert {shared_vm, second} <= names
        for name in (shared_vm, second):
            proc = run.cli("ssh", name, "cat", "/sys/class/net/eth0/address")
            assert proc.returncode == 0, proc.stderr
            assert proc.stdout.decode().strip() == manager.status(name).mac
    finally:
        manager.destroy(second)


def test_guest_without_lease_times_out_naming_the_phase(run: Run, manager: Manager) -> None:
    nonet = base(run, manager, "tiny-nonet")
    impatient = Manager(
        replace(run.settings, timeouts=replace(run.settings.timeouts, lease=5.0)),
        conn=manager.conn,
    )
    name = run.vm_name("nolease")
    with pytest.raises(WaitTimeoutError) as info:
        impatient.start(name, base=nonet)
    err = info.value
    assert err.phase == "DHCP lease"
    assert err.exit_code == 5
    # the tail shows how far the guest got (here: the boot loader loaded kernel and initrd)
    assert any("Loading" in line for line in err.console_tail), err.console_tail
    assert name not in [d.name() for d in manager.conn.listAllDomains(0)]  # cleaned up


def test_guest_that_powers_off_fails_fast(run: Run, manager: Manager) -> None:
    poweroff = base(run, manager, "tiny-poweroff")
    patient = Manager(
        replace(run.settings, timeouts=Timeouts(lease=600.0, banner=600.0)), conn=manager.conn
    )
    name = run.vm_name("poweroff")
    with pytest.raises(GuestFailedError) as info:
        patient.start(name, base=poweroff)
    err = info.value
    assert err.exit_code == 7
    # It noticed the guest was gone instead of waiting out the 600 s (x TCG factor) time-out.
    assert err.elapsed < 120, err.elapsed
    assert any("powers itself off" in line for line in err.console_tail), err.console_tail
    assert name not in [d.name() for d in manager.conn.listAllDomains(0)]


def test_changed_host_key_is_refused(run: Run, manager: Manager, shared_vm: str) -> None:
    known_hosts = run.settings.vm_dir(shared_vm) / "known_hosts"
    original = known_hosts.read_bytes()
    host = manager.address(shared_vm)
    fake = _other_ed25519_public_key(run)
    try:
        known_hosts.write_text(f"{host} {fake}\n")
        proc = run.cli("ssh", shared_vm, "true")
        assert proc.returncode == 8, proc.stderr
        assert b"host key" in proc.stderr.lower()
        from stagingvm.errors import HostKeyError
        from stagingvm.ssh.client import GuestSSH

        target = manager.ssh_target(shared_vm)
        with pytest.raises(HostKeyError):
            GuestSSH.to(target)
    finally:
        known_hosts.write_bytes(original)
    assert run.cli("ssh", shared_vm, "true").returncode == 0


def _other_ed25519_public_key(run: Run) -> str:
    """A real ed25519 public key that is not the guest's (made by stagingvm's own key code)."""
    from stagingvm.ssh.keys import ensure_client_key

    line = ensure_client_key(run.settings.data_dir / "impostor" / "id_ed25519")
    kind, blob = line.split()[:2]
    return f"{kind} {blob}"
