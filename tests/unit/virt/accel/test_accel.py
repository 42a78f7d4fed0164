"""The accelerator decision on libvirt's test driver (no daemon) and the probe payload itself.

The test driver accepts a 'kvm' domain but runs nothing, so the probe never sees its marker:
that is exactly the "KVM that does not run guest code" case. The success path needs a real
hypervisor and is covered by tests/e2e/test_accel.py.
"""

from __future__ import annotations

import json
import pwd
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import libvirt
import pytest

from stagingvm.errors import AcceleratorUnavailableError, InvalidInputError
from stagingvm.settings import Settings, Timeouts
from stagingvm.virt.accel import accel, refusal
from stagingvm.virt.accel.accelprobe import MARKER, PAYLOAD
from stagingvm.virt.domain import parse_domain


class RecordingProgress:
    def __init__(self) -> None:
        self.phases: list[str] = []
        self.notes: list[str] = []

    def phase(self, description: str):  # type: ignore[no-untyped-def]
        import contextlib

        self.phases.append(description)
        return contextlib.nullcontext()

    def note(self, message: str) -> None:
        self.notes.append(message)


@pytest.fixture
def conn():  # type: ignore[no-untyped-def]
    c = libvirt.open("test:///default")
    yield c
    c.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        uri="test:///default", data_dir=tmp_path / "data", timeouts=Timeouts(tcg_factor=5.0)
    )


def looks_usable(conn: libvirt.virConnect) -> None:
    """The host shows no refusal: the case where only a probe guest can tell (the test
    driver itself offers no 'kvm' domain type, so the real check refuses at once there)."""
    return None


def probe_domains(conn: libvirt.virConnect) -> list[str]:
    return [d.name() for d in conn.listAllDomains() if d.name().startswith("stagingvm-accel-probe")]


def test_tcg_skips_the_probe(settings: Settings, conn: libvirt.virConnect) -> None:
    progress = RecordingProgress()
    decision = accel.resolve_accel(replace(settings, accel="tcg"), conn, progress=progress)
    assert decision.domain_type == "qemu"
    assert decision.warning is None
    assert decision.timeout_factor == 5.0
    assert decision.scale(10) == 50
    assert progress.phases == []
    assert not (settings.data_dir / "accel").exists()


def test_invalid_mode_is_rejected(settings: Settings, conn: libvirt.virConnect) -> None:
    with pytest.raises(InvalidInputError):
        accel.resolve_accel(replace(settings, accel="fast"), conn)


def test_auto_falls_back_with_a_warning_that_says_why(
    settings: Settings, conn: libvirt.virConnect
) -> None:
    progress = RecordingProgress()
    decision = accel.resolve_accel(
        settings, conn, progress=progress, probe_timeout=0.3, refusal=looks_usable
    )
    assert decision.domain_type == "qemu"
    assert decision.timeout_factor == 5.0
    assert decision.warning is not None
    assert "did not finish in 0.3 s (no output)" in decision.warning
    assert "TCG" in decision.warning
    assert progress.notes == []  # the caller shows the warning
    assert progress.phases == ["checking that KVM really runs guests"]
    # the transient probe domain is gone, its log too
    assert probe_domains(conn) == []
    assert list((settings.data_dir / "accel").glob("probe-*.log")) == []
    assert (settings.data_dir / "accel" / "probe.bin").read_bytes() == PAYLOAD


def test_verdict_is_cached_per_boot_and_uri(settings: Settings, conn: libvirt.virConnect) -> None:
    accel.resolve_accel(settings, conn, probe_timeout=0.2, refusal=looks_usable)
    cache = settings.data_dir / "accel" / "kvm-verdict.json"
    record = json.loads(cache.read_text())
    assert record["boot_id"] == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert record["uri"] == "test:///default"
    assert record["works"] is False

    # A cached "works" verdict is believed without probing (the test driver could not say so).
    record["works"] = True
    record["detail"] = "probe guest finished in 0.4 s"
    cache.write_text(json.dumps(record))
    progress = RecordingProgress()
    decision = accel.resolve_accel(settings, conn, progress=progress)
    assert decision.domain_type == "kvm"
    assert decision.timeout_factor == 1.0
    assert "cached" in decision.reason
    assert progress.phases == []

    # Another boot, or another URI, probes again.
    record["boot_id"] = "another-boot"
    cache.write_text(json.dumps(record))
    assert accel.load_cached_verdict(settings) is None
    decision = accel.resolve_accel(settings, conn, probe_timeout=0.2, refusal=looks_usable)
    assert decision.domain_type == "qemu"
    assert accel.load_cached_verdict(replace(settings, uri="qemu:///session")) is None


def test_broken_cache_file_is_ignored(settings: Settings) -> None:
    path = settings.data_dir / "accel" / "kvm-verdict.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert accel.load_cached_verdict(settings) is None
    path.write_text('["a list"]')
    assert accel.load_cached_verdict(settings) is None


def test_kvm_that_does_not_work_is_an_error(settings: Settings, conn: libvirt.virConnect) -> None:
    with pytest.raises(AcceleratorUnavailableError) as info:
        accel.resolve_accel(
            replace(settings, accel="kvm"), conn, probe_timeout=0.2, refusal=looks_usable
        )
    assert info.value.exit_code == 12
    assert "does not work" in str(info.value)
    assert info.value.hint is not None and "--accel tcg" in info.value.hint
    assert probe_domains(conn) == []


def test_refused_domain_gives_libvirts_reason(tmp_path: Path, conn: libvirt.virConnect) -> None:
    # An architecture the test driver does not offer makes createXML fail, as /dev/kvm
    # permissions do on a real host.
    result = accel.probe_domain_type(conn, "xen-nonexistent", tmp_path, timeout=1)
    assert not result.works
    assert result.detail.startswith("libvirt refused a 'xen-nonexistent' guest:")


def test_probe_xml_is_filled_in() -> None:
    xml = accel.probe_xml("kvm", "stagingvm-accel-probe-x", Path("/d/probe.bin"), Path("/d/c.log"))
    assert parse_domain(xml).domain_type == "kvm"
    assert "<kernel>/d/probe.bin</kernel>" in xml
    assert 'file="/d/c.log"' in xml
    assert "<disk" not in xml and "<interface" not in xml


@pytest.mark.skipif(shutil.which("as") is None or shutil.which("ld") is None, reason="no binutils")
def test_payload_matches_its_source(tmp_path: Path) -> None:
    source = Path(accel.__file__).parent / "accelprobe" / "probe.S"
    subprocess.run(["as", "--32", "-o", tmp_path / "p.o", source], check=True)
    subprocess.run(
        [
            "ld",
            "-m",
            "elf_i386",
            "-Ttext=0x100000",
            "--oformat=binary",
            "-o",
            tmp_path / "p.bin",
            tmp_path / "p.o",
        ],
        check=True,
    )
    assert (tmp_path / "p.bin").read_bytes() == PAYLOAD
    assert MARKER in PAYLOAD
    assert PAYLOAD[:4] == bytes.fromhex("02b0ad1b")  # multiboot magic, little endian


def test_stages_are_read_after_the_firmware() -> None:
    firmware = b"SeaBIOS (version 1.16)\r\nMachine UUID x\r\nBooting from ROM.."
    assert accel._stages_seen(b"") == "nothing"
    assert accel._stages_seen(firmware) == "firmware"
    assert accel._stages_seen(firmware + b"PL") == "firmware, protected mode, long mode"
    assert accel._stages_seen(firmware + b"PLM") == (
        "firmware, protected mode, long mode, memory touched"
    )


def test_a_host_that_refuses_at_once_gets_no_probe_guest(
    settings: Settings, conn: libvirt.virConnect
) -> None:
    # The test driver's capabilities list only its own 'test' domain type: no KVM.
    progress = RecordingProgress()
    decision = accel.resolve_accel(settings, conn, progress=progress)
    assert decision.domain_type == "qemu"
    assert decision.warning is not None
    assert "capabilities offer no 'kvm' domain type" in decision.warning
    assert not (settings.data_dir / "accel" / "probe.bin").exists()  # nothing was booted
    assert accel.load_cached_verdict(settings) is not None  # and the verdict is cached
    with pytest.raises(AcceleratorUnavailableError):
        accel.resolve_accel(replace(settings, accel="kvm"), conn)


def test_no_kvm_device_is_a_refusal(tmp_path: Path) -> None:
    view = refusal.HostView(kvm_device=tmp_path / "kvm", qemu_conf=tmp_path / "qemu.conf")
    assert refusal.device_refusal("qemu:///system", view) == (
        f"{tmp_path / 'kvm'} does not exist (no KVM kernel module loaded?)"
    )
    # remote and non-QEMU URIs: the device is not this host's to look at
    assert refusal.device_refusal("qemu+ssh://build1/system", view) is None
    assert refusal.device_refusal("test:///default", view) is None


def test_a_device_qemus_user_cannot_open_is_a_refusal(tmp_path: Path) -> None:
    device = tmp_path / "kvm"
    device.write_bytes(b"")
    device.chmod(0o600)
    conf = tmp_path / "qemu.conf"
    owner = pwd.getpwuid(device.stat().st_uid).pw_name
    other = next(p for p in pwd.getpwall() if p.pw_uid not in (0, device.stat().st_uid))
    view = refusal.HostView(kvm_device=device, qemu_conf=conf)
    conf.write_text(f'# user = "root"\nuser = "{other.pw_name}"\n')
    reason = refusal.device_refusal("qemu:///system", view)
    assert reason is not None
    assert reason.startswith(f"QEMU runs as {other.pw_name}, which cannot open {device}")
    assert reason.endswith("Permission denied")
    device.chmod(0o660)  # a group (or an ACL mask) may let it in: the probe decides
    assert refusal.device_refusal("qemu:///system", view) is None
    device.chmod(0o600)
    conf.write_text(f'user = "{owner}"\n')  # its owner may open it
    assert refusal.device_refusal("qemu:///system", view) is None
    conf.write_text('user = "+0"\n')  # root may open anything
    assert refusal.device_refusal("qemu:///system", view) is None
    conf.write_text('user = "no-such-user-stagingvm"\n')  # unknown: the probe decides
    assert refusal.device_refusal("qemu:///system", view) is None
