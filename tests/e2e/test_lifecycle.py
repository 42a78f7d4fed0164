"""Every verb on one tiny guest, through the real CLI (a ``pr-test-vm`` subprocess).

start (with wait) -> ssh -> status/list -> console log -> stop -> start again -> rebuild
-> destroy, each checked against what libvirt itself says. The steps run in file order and
share one VM; a step whose predecessor failed is skipped rather than failing confusingly.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import libvirt
import pytest

from stagingvm.virt import network as vnetwork
from stagingvm.virt import storage
from stagingvm.vm.manager import overlay_name
from tests.e2e.harness import Run

done: dict[str, bool] = {}


def require(*steps: str) -> None:
    missing = [s for s in steps if not done.get(s)]
    if missing:
        pytest.skip(f"an earlier step failed: {', '.join(missing)}")


@pytest.fixture(scope="module")
def vm(run: Run, tiny_base: str) -> str:
    return run.vm_name("life")


def ok(proc: Any) -> Any:
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\nstdout: {proc.stdout.decode(errors='replace')}\n"
        f"stderr: {proc.stderr.decode(errors='replace')}"
    )
    return proc


def doc_of(proc: Any) -> Any:
    return json.loads(ok(proc).stdout)


def domain_mac_and_type(conn: libvirt.virConnect, name: str) -> tuple[str, str]:
    root = ET.fromstring(conn.lookupByName(name).XMLDesc(0))
    mac = root.find("devices/interface/mac")
    assert mac is not None
    return mac.get("address", ""), root.get("type", "")


def lease_ip(conn: libvirt.virConnect, run: Run, mac: str) -> str | None:
    net = conn.networkLookupByName(run.settings.network.name)
    for lease in net.DHCPLeases():
        if lease["mac"].lower() == mac.lower():
            return str(lease["ipaddr"])
    return None


def test_start_waits_until_ssh_works(run: Run, vm: str, conn: libvirt.virConnect) -> None:
    doc = doc_of(run.cli("start", vm, "--base", "tiny", "--json"))
    assert doc["name"] == vm and doc["state"] == "running"
    dom = conn.lookupByName(vm)
    assert dom.isActive()
    mac, dtype = domain_mac_and_type(conn, vm)
    assert doc["mac"] == mac and doc["domain_type"] == dtype
    assert doc["ip"] is not None and doc["ip"] == lease_ip(conn, run, mac)
    done["start"] = True


def test_ssh_keeps_exit_status_stdout_and_stderr_apart(run: Run, vm: str) -> None:
    require("start")
    proc = run.cli("ssh", vm, "--", "sh", "-c", "echo to-out; echo to-err >&2; exit 3")
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == b"to-out\n"
    assert b"to-err" in proc.stderr and b"to-err" not in proc.stdout
    assert ok(run.cli("ssh", vm, "cat", "/proc/sys/kernel/hostname")).stdout.strip()
    done["ssh"] = True


def test_status_and_list_agree_with_libvirt(run: Run, vm: str, conn: libvirt.virConnect) -> None:
    require("start")
    status = doc_of(run.cli("status", vm, "--json"))
    listed = {d["name"]: d for d in doc_of(run.cli("list", "--json"))}
    assert vm in listed
    for key in ("name", "state", "ip", "mac", "memory_mib", "vcpus", "domain_type", "base"):
        assert listed[vm][key] == status[key], key
    dom = conn.lookupByName(vm)
    state, max_kib, _mem, vcpus, _cpu = dom.info()
    assert state == libvirt.VIR_DOMAIN_RUNNING and status["state"] == "running"
    assert status["memory_mib"] * 1024 == max_kib and status["vcpus"] == vcpus
    assert status["ip"] == lease_ip(conn, run, status["mac"])
    pool = conn.storagePoolLookupByName(run.settings.pool_name)
    assert status["disk"]["path"] == pool.storageVolLookupByName(overlay_name(vm)).path()
    assert status["base"] == "tiny"
    done["status"] = True


def test_console_log_holds_the_boot(run: Run, vm: str) -> None:
    require("start")
    proc = ok(run.cli("console", vm, "--log"))
    assert b"SYSLINUX" in proc.stdout  # the boot loader, then the guest's own lines
    assert b"got lease" in proc.stdout and b"sshd ready" in proc.stdout
    assert proc.stdout == (run.settings.vm_dir(vm) / "console.log").read_bytes()[: len(proc.stdout)]


def test_stop_shuts_the_guest_down(run: Run, vm: str, conn: libvirt.virConnect) -> None:
    require("start")
    ok(run.cli("stop", vm))
    assert not conn.lookupByName(vm).isActive()
    assert doc_of(run.cli("status", vm, "--json"))["state"] != "running"
    done["stop"] = True


def test_start_again_boots_the_stopped_vm(run: Run, vm: str, conn: libvirt.virConnect) -> None:
    require("stop")
    mac_before, _ = domain_mac_and_type(conn, vm)
    doc = doc_of(run.cli("start", vm, "--json"))
    assert doc["state"] == "running" and doc["mac"] == mac_before
    assert ok(run.cli("ssh", vm, "true")).returncode == 0
    done["restart"] = True


def test_rebuild_keeps_mac_and_ip(run: Run, vm: str, conn: libvirt.virConnect) -> None:
    require("start")
    before = doc_of(run.cli("status", vm, "--json"))
    if before["state"] != "running":  # the restart step failed: rebuild from a stopped VM
        before["ip"] = vnetwork_ip(conn, run, vm)
    after = doc_of(run.cli("rebuild", vm, "--json"))
    assert after["state"] == "running"
    assert after["mac"] == before["mac"]
    assert after["ip"] == before["ip"]
    assert ok(run.cli("ssh", vm, "true")).returncode == 0
    done["rebuild"] = True


def vnetwork_ip(conn: libvirt.virConnect, run: Run, vm: str) -> str | None:
    net = conn.networkLookupByName(run.settings.network.name)
    return next((h.ip for h in vnetwork.dhcp_hosts(net) if h.name == vm), None)


def test_destroy_leaves_nothing(run: Run, vm: str, conn: libvirt.virConnect) -> None:
    require("start")
    if vm not in [d.name() for d in conn.listAllDomains(0)]:
        # a failed rebuild removes the VM: start a fresh one so destroy is still tested
        ok(run.cli("start", vm, "--base", "tiny", "--json"))
    mac, _ = domain_mac_and_type(conn, vm)
    ok(run.cli("destroy", vm))
    assert vm not in [d.name() for d in conn.listAllDomains(0)]
    pool = conn.storagePoolLookupByName(run.settings.pool_name)
    pool.refresh(0)
    assert storage.volume_lookup(pool, overlay_name(vm)) is None
    assert not run.settings.vm_dir(vm).exists()  # console log, known_hosts
    net = conn.networkLookupByName(run.settings.network.name)
    hosts = vnetwork.dhcp_hosts(net)
    assert all(h.name != vm and h.mac != mac for h in hosts)
    assert vm not in [d["name"] for d in doc_of(run.cli("list", "--json"))]
    assert run.cli("status", vm, "--json").returncode == 3
