"""Snapshot and revert on a real tiny guest: the address, host key and login survive a revert,
what happened after the snapshot is gone, the clock is set again, each run's nonces are
planted afresh, ``check --reset`` reverts first, and ``destroy`` removes the snapshots.

The tiny guest has no docker, so the checks' full set-up cannot run on it: the nonce test
plants the run's root canary itself (as ``SETUP`` does, from ``RunFacts.fresh()``), and the
``check --reset`` test checks the revert and that the check then stops with exit 11 (the tiny
guest has no ai-worker to log in as).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from stagingvm.checks.fixtures import RunFacts
from stagingvm.ssh.client import GuestSSH
from stagingvm.vm.manager import Manager
from tests.e2e.harness import Run

CANARY = "/root/stagingvm/canary.txt"


@pytest.fixture(scope="module")
def vm(run: Run, manager: Manager, tiny_base: str) -> Iterator[str]:
    name = run.vm_name("snap")
    manager.start(name, base=tiny_base)
    yield name
    manager.destroy(name)


def root_run(manager: Manager, name: str, argv: list[str]) -> tuple[int, str]:
    ssh = GuestSSH.to(manager.ssh_target(name, "root"), timeout=60.0)
    try:
        result = ssh.run(argv, timeout=120.0)
    finally:
        ssh.close()
    return result.exit_status, result.stdout.decode(errors="replace")


def ok(proc: object) -> None:
    code = getattr(proc, "returncode", None)
    assert code == 0, f"exit {code}: {getattr(proc, 'stderr', b'').decode(errors='replace')}"


def test_revert_keeps_address_key_and_login(run: Run, manager: Manager, vm: str) -> None:
    ip = manager.address(vm)
    known_hosts = manager.ssh_target(vm, "root").known_hosts
    pinned = known_hosts.read_bytes()
    ok(run.cli("snapshot", vm))
    doc = json.loads(run.cli("status", vm, "--json").stdout)
    assert doc["snapshots"] == ["ready"]
    assert root_run(manager, vm, ["touch", "/tmp/after-snapshot"])[0] == 0

    ok(run.cli("revert", vm))
    assert manager.address(vm) == ip
    assert known_hosts.read_bytes() == pinned  # nothing new pinned: the same host key
    status, out = root_run(manager, vm, ["sh", "-c", "ls /tmp; date -u +%s"])
    assert status == 0  # logged in strictly against the pinned key, with the same credentials
    assert "after-snapshot" not in out
    guest_now = int(out.split()[-1])
    assert abs(guest_now - time.time()) < 120, "revert did not set the guest's clock"


def test_nonces_are_planted_afresh_after_each_revert(run: Run, manager: Manager, vm: str) -> None:
    planted = []
    for _ in range(2):
        ok(run.cli("revert", vm))
        status, _ = root_run(manager, vm, ["cat", CANARY])
        assert status != 0, "a canary survived the revert: it was in the snapshot"
        nonce = RunFacts.fresh().secrets.values["root-canary"]
        script = 'mkdir -p "${1%/*}" && printf "%s\\n" "$2" > "$1" && cat "$1"'
        status, out = root_run(manager, vm, ["sh", "-c", script, "sh", CANARY, nonce])
        assert status == 0 and out.strip() == nonce
        planted.append(nonce)
    assert planted[0] != planted[1]


def test_check_reset_reverts_before_running(run: Run, manager: Manager, vm: str) -> None:
    assert root_run(manager, vm, ["touch", "/tmp/before-reset"])[0] == 0
    proc = run.cli("check", vm, "--reset", "--family", "secrets", "--json", timeout=600)
    # The tiny guest has no ai-worker: after the revert the check cannot log in as the
    # policy's user (exit 11, no verdict), which is as far as it gets on this guest.
    assert proc.returncode == 11, proc.stderr.decode(errors="replace")
    assert "ai-worker" in proc.stderr.decode(errors="replace")
    status, out = root_run(manager, vm, ["ls", "/tmp"])
    assert status == 0 and "before-reset" not in out


def test_destroy_removes_snapshots(run: Run, manager: Manager, tiny_base: str) -> None:
    name = run.vm_name("snapgone")
    manager.start(name, base=tiny_base)
    ok(run.cli("snapshot", name, "--name", "one"))
    ok(run.cli("destroy", name))
    assert name not in [d.name() for d in manager.conn.listAllDomains(0)]
