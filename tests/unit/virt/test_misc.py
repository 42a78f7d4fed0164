"""Console log tails, domain metadata and credentials, the connection cache and its errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from stagingvm.errors import InvalidInputError, LibvirtUnavailableError, StagingVMError
from stagingvm.virt import connection, consolelog, xmlrender
from stagingvm.virt import domain as vdomain
from tests.unit.corehelpers import TESTDRIVER_URI


def test_console_tail_cleans_escapes_and_carriage_returns(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_bytes(
        b"\x1b[0;32m[  OK  ]\x1b[0m Started sshd.\r\n"
        b"progress 10%\rprogress 50%\rprogress 100%\n"
        b"\n"
        b"bad utf-8: \xff\xfe end\n"
        b"\x1b]0;title\x07login: "
    )
    assert consolelog.tail(log, 30) == [
        "[  OK  ] Started sshd.",
        "progress 100%",
        "bad utf-8: \ufffd\ufffd end",
        "login:",
    ]
    assert consolelog.tail(log, 2) == ["bad utf-8: \ufffd\ufffd end", "login:"]
    assert consolelog.tail(tmp_path / "missing.log") == []


def test_console_tail_reads_only_the_end(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_text("".join(f"line {i}\n" for i in range(100_000)))
    lines = consolelog.tail(log, 30, max_bytes=4096)
    assert lines == [f"line {i}" for i in range(99_970, 100_000)]


def test_metadata_round_trip_and_foreign_xml() -> None:
    meta = vdomain.Metadata(
        created_at=datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC),
        base="img",
        base_volume="base-img-0123456789ab.qcow2",
        pr_ref=None,
        label="ünïcode ok",
    )
    assert vdomain.Metadata.from_element(meta.to_element()) == meta
    # libvirt's setMetadata can drop the namespace of child elements: still readable.
    plain = xmlrender.parse(
        f'<x:vm xmlns:x="{xmlrender.STAGINGVM_NS}"><created-at>2026-05-06T07:08:09Z</created-at>'
        '<base volume="v">img</base></x:vm>'
    )
    parsed = vdomain.Metadata.from_element(plain)
    assert parsed is not None and parsed.base == "img" and parsed.base_volume == "v"
    broken = xmlrender.parse(f'<x:vm xmlns:x="{xmlrender.STAGINGVM_NS}"><base>img</base></x:vm>')
    assert vdomain.Metadata.from_element(broken) is None
    foreign = vdomain.parse_domain("<domain type='kvm'><name>f</name><metadata/></domain>")
    assert foreign.metadata is None


@pytest.mark.parametrize(
    "value", ["ssh-ed25519 AAAA key@host", "two\nlines", "tab\there", "ünïcode", "a=b=c"]
)
def test_credentials_round_trip(value: str) -> None:
    entry = vdomain.credential_entry("ssh.authorized_keys.root", value)
    assert vdomain.parse_credential(entry) == ("ssh.authorized_keys.root", value)
    assert "\n" not in entry


@pytest.mark.parametrize("name", ["", "a/b", ".hidden", "x" * 300, "sp ace", "a=b"])
def test_bad_credential_names(name: str) -> None:
    with pytest.raises(InvalidInputError):
        vdomain.credential_entry(name, "v")


def test_connect_is_cached_per_uri() -> None:
    try:
        first = connection.connect(TESTDRIVER_URI)
        assert connection.connect(TESTDRIVER_URI) is first
        connection.forget(TESTDRIVER_URI)
        assert connection.connect(TESTDRIVER_URI) is not first
    finally:
        connection.forget(TESTDRIVER_URI)


def test_unreachable_libvirtd_says_how_to_start_it(tmp_path: Path) -> None:
    uri = f"qemu:///system?socket={tmp_path}/no-such-socket"
    with pytest.raises(LibvirtUnavailableError) as err:
        connection.connect(uri)
    assert err.value.exit_code == 4
    assert err.value.hint is not None and "libvirtd --daemon" in err.value.hint


def test_permission_problems_get_the_permission_hint() -> None:
    exc = connection.unavailable("qemu:///system", OSError("Failed to connect: Permission denied"))
    assert exc.hint == connection.PERMISSION_HINT


def test_unexpected_libvirt_errors_become_stagingvm_errors() -> None:
    import libvirt

    conn = connection.connect(TESTDRIVER_URI)
    try:
        with pytest.raises(libvirt.libvirtError) as raw:
            conn.defineXML("<domain type='nonsense'/>")
        mapped = connection.translate(raw.value, TESTDRIVER_URI)
        assert isinstance(mapped, StagingVMError) and mapped.message.startswith("libvirt: ")
        assert connection.translate(ValueError("x"), TESTDRIVER_URI) is None
    finally:
        connection.forget(TESTDRIVER_URI)
