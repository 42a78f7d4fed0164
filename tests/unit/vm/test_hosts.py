"""Several hosts on libvirt's test driver: two test:/// files whose nodes have different
memory stand in for two hosts with different free memory."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from stagingvm.errors import ConflictError, LibvirtUnavailableError, NotFoundError
from stagingvm.settings import Settings
from stagingvm.virt import domain as vdomain
from stagingvm.virt.connection import connect, forget
from stagingvm.vm.hosts import HostSet, free_mib
from stagingvm.vm.manager import Manager
from tests.unit.conftest import Invoke
from tests.unit.corehelpers import TESTS, add_base, make_manager

NODE = (
    "<cpu><nodes>1</nodes><sockets>1</sockets><cores>2</cores><threads>1</threads>"
    "<active>2</active><mhz>2000</mhz><model>x86_64</model></cpu>"
    "<memory>{kib}</memory>"
)


def host_file(directory: Path, name: str, mib: int) -> str:
    """A copy of the unit tests' driver file (one foreign 512 MiB domain, running) on a node
    with *mib* MiB of memory; its test:/// URI."""
    text = (TESTS / "testdriver.xml").read_text()
    text = text.replace("<node>", "<node>" + NODE.format(kib=mib * 1024), 1)
    path = directory / f"{name}.xml"
    path.write_text(text)
    return f"test://{path}"


@pytest.fixture
def two_hosts(settings: Settings, tmp_path: Path, routes_file: Path) -> Iterator[HostSet]:
    small = host_file(tmp_path, "small", 4096)
    big = host_file(tmp_path, "big", 8192)
    multi = dataclasses.replace(settings, uri=small, hosts=(small, big))

    def make(s: Settings) -> Manager:
        return make_manager(s, connect(s.uri), routes_file)

    try:
        yield HostSet(multi, make)
    finally:
        forget(small)
        forget(big)


def test_free_memory_is_the_nodes_less_its_running_domains(two_hosts: HostSet) -> None:
    small, big = two_hosts.uris
    assert free_mib(connect(small)) == 4096 - 512
    assert free_mib(connect(big)) == 8192 - 512


def test_a_new_vm_goes_to_the_host_with_most_free_memory_and_is_found_there(
    two_hosts: HostSet,
) -> None:
    small, big = two_hosts.uris
    for uri in (small, big):
        add_base(two_hosts.manager(uri))
    chosen = two_hosts.place("pr-1", 2048, base="base")
    assert chosen.settings.uri == big
    chosen.start("pr-1", base="base", wait=False, memory=2048)
    # Recorded in the VM's own libvirt metadata, and the host answers for it.
    dom = vdomain.lookup(connect(big), "pr-1")
    assert dom is not None
    meta = vdomain.facts(dom).metadata
    assert meta is not None and meta.host == big
    assert two_hosts.locate("pr-1").settings.uri == big
    assert two_hosts.locate("pr-1").status("pr-1").host == big
    # Now the big host has 8192 - 512 - 2048 = 5632 MiB free, still the most.
    assert free_mib(connect(big)) == 5632
    assert two_hosts.place("pr-2", 4000, base="base").settings.uri == big
    # Fill it up: the next VM goes to the small host.
    two_hosts.manager(big).start("pr-3", base="base", wait=False, memory=4096)
    assert two_hosts.place("pr-4", 2048, base="base").settings.uri == small
    infos, down = two_hosts.list()
    assert down == []
    assert [(vm.name, vm.host) for vm in infos] == [("pr-1", big), ("pr-3", big)]
    # A name that exists on a host goes back to that host (start boots it again or refuses).
    assert two_hosts.place("pr-1", 64).settings.uri == big


def test_only_hosts_with_the_base_and_room_count(two_hosts: HostSet) -> None:
    small, big = two_hosts.uris
    add_base(two_hosts.manager(small))
    assert two_hosts.place("pr-1", 1024, base="base").settings.uri == small
    with pytest.raises(ConflictError) as err:
        two_hosts.place("pr-1", 8000)
    assert re.search(r"no host has room for VM pr-1 \(8000 MiB\)", str(err.value))
    assert f"{small}: 3584 MiB free" in str(err.value)
    assert f"{big}: 7680 MiB free" in str(err.value)


def test_a_host_that_is_down_is_named(
    settings: Settings, tmp_path: Path, routes_file: Path
) -> None:
    up = host_file(tmp_path, "up", 4096)
    down = f"test://{tmp_path / 'gone.xml'}"
    hosts = HostSet(
        dataclasses.replace(settings, uri=up, hosts=(up, down)),
        lambda s: make_manager(s, None, routes_file),
    )
    try:
        add_base(hosts.manager(up))
        hosts.manager(up).start("pr-1", base="base", wait=False)
        assert hosts.locate("pr-1").settings.uri == up
        with pytest.raises(NotFoundError, match=f"not reachable: {re.escape(down)}"):
            hosts.locate("pr-9")
        with pytest.raises(LibvirtUnavailableError, match=re.escape(down)):
            hosts.place("pr-9", 64)
        infos, unreachable = hosts.list()
        assert [vm.name for vm in infos] == ["pr-1"]
        assert [uri for uri, _ in unreachable] == [down]
    finally:
        forget(up)


def test_list_shows_a_host_column(cli: Invoke, two_hosts: HostSet, settings: Settings) -> None:
    small, big = two_hosts.uris
    for uri in (small, big):
        add_base(two_hosts.manager(uri))
        two_hosts.manager(uri).start(f"pr-{Path(uri).stem}", base="base", wait=False)
    args = ["--uri", small, "--uri", big, "--data-dir", str(settings.data_dir)]
    result = cli([*args, "list"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "STATE", "HOST"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["pr-big", "running", "big.xml"],
        ["pr-small", "running", "small.xml"],
    ]
    status = cli([*args, "status", "pr-big", "--json"])
    assert status.exit_code == 0, status.stderr
    assert f'"host": "{big}"' in status.stdout
