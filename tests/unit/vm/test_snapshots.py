"""Snapshots on libvirt's test driver: create, list, revert, refuse bad names, destroy.

The test driver keeps snapshots as metadata and reverts the domain's state; the memory
and the guest's own view are tested on real VMs (tests/e2e/test_snapshots_e2e.py).
"""

from __future__ import annotations

import pytest

from stagingvm.errors import ConflictError, InvalidInputError, NotFoundError
from stagingvm.virt import bases
from stagingvm.virt import domain as vdomain
from stagingvm.vm import snapshots
from stagingvm.vm.manager import Manager


def test_snapshot_is_listed_and_reverted_to(manager: Manager, base: bases.BaseImage) -> None:
    manager.start("web", base="base", wait=False)
    taken = snapshots.create(manager, "web")
    assert taken.name == "ready"
    assert taken.state == "running"
    assert taken.to_json()["name"] == "ready"
    snapshots.create(manager, "web", "second")
    info = manager.status("web")
    assert info.snapshots == ("ready", "second")
    assert info.to_json()["snapshots"] == ["ready", "second"]
    assert [vm.snapshots for vm in manager.list()] == [("ready", "second")]

    snapshots.create(manager, "web")  # the same name again replaces it
    assert sorted(manager.status("web").snapshots) == ["ready", "second"]

    dom = vdomain.lookup(manager.conn, "web")
    assert dom is not None
    dom.destroy()
    snapshots.revert(manager, "web", "second", wait=False)
    assert manager.status("web").running  # a snapshot of a running VM comes back running


def test_bad_and_missing_snapshots_are_refused(manager: Manager, base: bases.BaseImage) -> None:
    manager.start("web", base="base", wait=False)
    with pytest.raises(InvalidInputError):
        snapshots.create(manager, "web", "Not A Name")
    with pytest.raises(InvalidInputError):
        snapshots.revert(manager, "web", "../x")
    with pytest.raises(NotFoundError) as info:
        snapshots.revert(manager, "web", "never", wait=False)
    assert "snapshot" in (info.value.hint or "")
    with pytest.raises(NotFoundError):
        snapshots.create(manager, "nosuchvm")
    assert manager.status("web").snapshots == ()
    manager.stop("web", force=True)
    with pytest.raises(ConflictError):
        snapshots.create(manager, "web")


def test_destroy_removes_the_snapshots(manager: Manager, base: bases.BaseImage) -> None:
    manager.start("web", base="base", wait=False)
    snapshots.create(manager, "web")
    manager.destroy("web")
    assert vdomain.lookup(manager.conn, "web") is None
    manager.start("web", base="base", wait=False)
    assert manager.status("web").snapshots == ()


def test_snapshot_xml_comes_from_the_template() -> None:
    xml = snapshots.render_snapshot("ready", "stagingvm: <web> & co")
    assert '<memory snapshot="internal" />' in xml
    assert "&lt;web&gt; &amp; co" in xml
    with pytest.raises(InvalidInputError):
        snapshots.render_snapshot("a'b", "x")
