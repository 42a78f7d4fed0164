"""Every XML template, rendered with fixed values, against a checked-in golden file.

Each rendering is also parsed back and defined on libvirt's test driver (domains are started
and destroyed too), so a template change that libvirt would reject fails here.
Run ``pytest --regenerate-golden`` after an intended template change, and review the diff.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from stagingvm.settings import NetworkSettings
from stagingvm.virt import domain as vdomain
from stagingvm.virt import network, storage, xmlrender
from tests.unit.corehelpers import GOLDEN

FIXED_UUID = "5f0c3a1e-8d2b-4c6a-9e7f-0123456789ab"
FIXED_MAC = "52:54:00:12:34:56"
FIXED_TIME = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
POOL_PATH = Path("/var/lib/libvirt/images/stagingvm")
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGolden stagingvm@host"


def check_golden(request: pytest.FixtureRequest, name: str, rendered: str) -> None:
    path = GOLDEN / name
    if request.config.getoption("--regenerate-golden"):
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"no golden file {path}: run pytest --regenerate-golden"
    assert rendered == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"
    xmlrender.parse(rendered)  # well-formed


def domain_spec(domain_type: str) -> vdomain.DomainSpec:
    return vdomain.DomainSpec(
        name="golden",
        uuid=FIXED_UUID,
        domain_type=domain_type,
        memory_mib=1536,
        vcpus=2,
        disk_path=str(POOL_PATH / "vm-golden.qcow2"),
        network="staging",
        mac=FIXED_MAC,
        console_log=Path("/var/lib/staging-vm/vms/golden/console.log"),
        credentials={
            "ssh.authorized_keys.root": KEY,
            "stagingvm.authorized_keys.ai-worker": KEY,
            "multi-line": "line one\nline two <&>",
        },
        metadata=vdomain.Metadata(
            created_at=FIXED_TIME,
            base="golden-base",
            base_volume="base-golden-base-0123456789ab.qcow2",
            pr_ref="refs/pull/42/head",
            label="check <design-a> & more",
        ),
    )


def test_network_golden(request: pytest.FixtureRequest, conn: Any) -> None:
    rendered = network.render_network(NetworkSettings())
    check_golden(request, "network.xml", rendered)
    net = conn.networkDefineXML(rendered)
    net.create()
    assert net.isActive()
    assert network.drift(rendered, net.XMLDesc(0)) == []


def test_pool_and_volume_golden(request: pytest.FixtureRequest, conn: Any) -> None:
    rendered_pool = storage.render_pool("staging", POOL_PATH)
    check_golden(request, "pool.xml", rendered_pool)
    base = storage.render_volume(
        "base-golden-0123456789ab.qcow2", capacity=1 << 30, fmt="raw", mode=storage.BASE_MODE
    )
    check_golden(request, "volume-base.xml", base)
    overlay = storage.render_volume(
        "vm-golden.qcow2",
        capacity=1 << 30,
        fmt="qcow2",
        mode=storage.OVERLAY_MODE,
        backing_path=str(POOL_PATH / "base-golden-0123456789ab.qcow2"),
        backing_format="qcow2",
    )
    check_golden(request, "volume-overlay.xml", overlay)
    assert xmlrender.parse(base).find("backingStore") is None

    pool = conn.storagePoolDefineXML(rendered_pool, 0)
    pool.create(0)
    pool.createXML(base, 0)
    vol = pool.createXML(overlay, 0)
    backing = xmlrender.parse(vol.XMLDesc(0)).findtext("backingStore/path")
    assert backing == str(POOL_PATH / "base-golden-0123456789ab.qcow2")


@pytest.mark.parametrize("domain_type", ["qemu", "kvm"])
def test_domain_golden(request: pytest.FixtureRequest, conn: Any, domain_type: str) -> None:
    spec = domain_spec(domain_type)
    rendered = vdomain.render_domain(spec)
    check_golden(request, f"domain-{domain_type}.xml", rendered)

    dom = conn.defineXML(rendered)
    dom.create()
    assert dom.isActive()
    # What libvirt keeps is what we meant: read back through libvirt, not our own string.
    facts = vdomain.facts(dom)
    assert facts.name == "golden"
    assert facts.domain_type == domain_type
    assert facts.memory_mib == 1536 and facts.vcpus == 2
    assert facts.mac == FIXED_MAC and facts.network == "staging"
    assert facts.console_log == str(spec.console_log)
    assert facts.credentials == dict(spec.credentials)
    assert facts.metadata == spec.metadata
    dom.destroy()
    dom.undefine()


def test_domain_has_the_devices_a_guest_needs() -> None:
    root = xmlrender.parse(vdomain.render_domain(domain_spec("qemu")))
    assert root.find("os/smbios").get("mode") == "sysinfo"
    assert root.find("sysinfo").get("type") == "smbios"
    assert root.find("devices/disk/target").get("bus") == "virtio"
    assert root.find("devices/interface/model").get("type") == "virtio"
    assert root.find("devices/serial/log").get("append") == "off"
    assert root.find("devices/console").get("type") == "pty"
    assert root.find("devices/rng").get("model") == "virtio"
    channel = root.find("devices/channel/target")
    assert channel.get("name") == "org.qemu.guest_agent.0"
    assert root.findtext("on_poweroff") == "destroy"
    assert root.findtext("on_crash") == "destroy"
    assert root.find("cpu") is None  # TCG keeps QEMU's default CPU
    kvm = xmlrender.parse(vdomain.render_domain(domain_spec("kvm")))
    assert kvm.find("cpu").get("mode") == "host-passthrough"


@pytest.mark.parametrize("domain_type", ["kvm", "qemu"])
def test_every_xml_field_reads_back_what_was_rendered(domain_type: str) -> None:
    """One (field, XPath) table serves both ways: each field survives render -> parse."""
    spec = domain_spec(domain_type)
    found = vdomain.parse_domain(vdomain.render_domain(spec))
    fields = [name for name, _path, _attr in vdomain.XML_FIELDS]
    assert len(fields) == len(set(fields)) >= 8
    for name in fields:
        assert str(getattr(found, name)) == str(getattr(spec, name)), name
    assert found.credentials == spec.credentials
