"""End-to-end tests: real VMs under the lab's libvirtd, run inside the lab's network namespace.

Run them as root inside the lab (see docs/lab.md):

    pr-test-vm lab up
    ip netns exec stagingvm-lab /work/venv/bin/python -m pytest -m e2e tests/e2e

Anywhere else the whole suite is skipped with the reason. Everything a run creates (VMs,
network, pool, data dir) is removed by a session finalizer, after failures too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from stagingvm.lab import netns
from stagingvm.virt.connection import connect
from stagingvm.vm.manager import Manager
from tests.e2e.harness import LAB_NAMESPACE, LAB_URI, Run, base, clean_up, make_run

E2E_DIR = Path(__file__).resolve().parent


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "e2e tests need root (libvirt's system daemon, network namespaces)"
    if not netns.exists(LAB_NAMESPACE):
        return f"the lab namespace {LAB_NAMESPACE!r} does not exist: run `pr-test-vm lab up`"
    if not netns.self_in_namespace(LAB_NAMESPACE):
        return (
            f"e2e tests talk to VM addresses and must run inside the lab: "
            f"`ip netns exec {LAB_NAMESPACE} python -m pytest -m e2e tests/e2e`"
        )
    try:
        connect(LAB_URI).getLibVersion()
    except Exception as exc:
        return f"libvirtd does not answer at {LAB_URI}: {exc} (run `pr-test-vm lab up`)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mine = [item for item in items if E2E_DIR in Path(str(item.path)).parents]
    if not mine:
        return
    reason = _skip_reason()
    for item in mine:
        item.add_marker(pytest.mark.e2e)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))
    # The policy lab's full batteries take minutes each under emulation: run them last, so a
    # broken basic verb shows up in minutes rather than after them.
    slow = [item for item in items if Path(str(item.path)).name in SLOWEST_LAST]
    if slow:
        items[:] = [item for item in items if item not in slow] + slow
    if os.environ.get("STAGINGVM_E2E_POLICY_LAB") == "0":
        # Three full batteries take about 25 minutes under software emulation on 2 idle
        # cores. They run by default (CI included); opt out with STAGINGVM_E2E_POLICY_LAB=0.
        for item in slow:
            item.add_marker(
                pytest.mark.skip(reason="policy lab batteries: STAGINGVM_E2E_POLICY_LAB=0")
            )


SLOWEST_LAST = {"test_own_image.py", "test_checks_lab.py"}


@pytest.fixture(scope="session")
def conn() -> libvirt.virConnect:
    return connect(LAB_URI)


@pytest.fixture(scope="session")
def run(conn: libvirt.virConnect, request: pytest.FixtureRequest) -> Run:
    """This run's settings; its finalizer removes everything the run made."""
    the_run = make_run(conn)

    def finish() -> None:
        # connect() again: a test module may have closed the shared connection (forget()).
        failures = clean_up(the_run, connect(LAB_URI))
        assert not failures, "e2e clean-up left something behind: " + "; ".join(failures)

    request.addfinalizer(finish)
    return the_run


@pytest.fixture(scope="session")
def manager(run: Run, conn: libvirt.virConnect) -> Manager:
    return Manager(run.settings, conn=conn)


@pytest.fixture(scope="session")
def tiny_base(run: Run, manager: Manager) -> str:
    """The tiny guest (built beforehand, cached across runs) imported as base ``tiny``."""
    return base(run, manager, "tiny")


@pytest.fixture(scope="session")
def shared_vm(run: Run, manager: Manager, tiny_base: str) -> Iterator[str]:
    """One booted tiny VM for tests that only look at it (two-VMs, host-key tests)."""
    name = run.vm_name("shared")
    manager.start(name, base=tiny_base)
    yield name
    manager.destroy(name)
