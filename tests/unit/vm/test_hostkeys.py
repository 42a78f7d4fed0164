"""Host keys known before first contact: read from the builder's manifest, pinned at start.

The decision (seeded: strict login; no keys: first key pinned) and the known_hosts content
are checked on libvirt's test driver; the strict login itself against a real dropbear is in
tests/unit/ssh/test_dropbear.py, and against a booted guest in tests/e2e.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from stagingvm.errors import HostKeyError, InvalidInputError
from stagingvm.settings import Settings
from stagingvm.ssh.keys import ensure_client_key
from stagingvm.ssh.known_hosts import KnownHosts, parse_public_key
from stagingvm.virt import bases, network
from stagingvm.vm.hostkeys import recorded_host_keys
from stagingvm.vm.manager import Manager
from tests.unit.corehelpers import ReadyProbes, add_base, make_manager


def public_keys(tmp_path: Path, count: int) -> list[str]:
    """*count* real ed25519 public key lines (``TYPE BASE64 COMMENT``)."""
    return [ensure_client_key(tmp_path / "hostkeys" / f"key{i}") for i in range(count)]


def builder_disk(directory: Path, keys: list[Any], *, disk_bytes: int | None = None) -> Path:
    """A disk.qcow2 with a manifest.json beside it, as the image cache leaves them."""
    directory.mkdir(parents=True)
    disk = directory / "disk.qcow2"
    disk.write_bytes(b"QFI\xfb" + bytes(4092))
    manifest = {
        "name": "tiny",
        "builder": "tiny",
        "disk_bytes": disk.stat().st_size if disk_bytes is None else disk_bytes,
        "facts": {"ssh_host_keys": keys},
    }
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return disk


def test_builder_disk_yields_its_recorded_keys_without_comments(tmp_path: Path) -> None:
    keys = public_keys(tmp_path, 2)
    disk = builder_disk(tmp_path / "tiny-abc", keys)
    assert recorded_host_keys(disk) == tuple(" ".join(k.split()[:2]) for k in keys)


def test_keys_are_only_taken_from_a_manifest_that_describes_the_disk(tmp_path: Path) -> None:
    keys = public_keys(tmp_path, 1)
    # The disk was replaced after the build (another size): the manifest says nothing about it.
    assert recorded_host_keys(builder_disk(tmp_path / "a", keys, disk_bytes=1)) == ()
    # Not the cache's disk name: a user's image that happens to sit next to a manifest.
    other = builder_disk(tmp_path / "b", keys)
    renamed = other.rename(other.with_name("nixos.qcow2"))
    assert recorded_host_keys(renamed) == ()
    # No manifest, or one that is not JSON.
    bare = tmp_path / "c" / "disk.qcow2"
    bare.parent.mkdir()
    bare.write_bytes(b"x")
    assert recorded_host_keys(bare) == ()
    (bare.parent / "manifest.json").write_text("{torn")
    assert recorded_host_keys(bare) == ()


def test_a_malformed_recorded_key_is_refused_not_ignored(tmp_path: Path) -> None:
    good = public_keys(tmp_path, 1)[0]
    kind, blob = good.split()[:2]
    for i, bad in enumerate([f"ssh-rsa {blob}", f"{kind} not-base64!", "ssh-ed25519", 42]):
        disk = builder_disk(tmp_path / f"img{i}", [good, bad])
        with pytest.raises(InvalidInputError, match="malformed SSH host key"):
            recorded_host_keys(disk)
    assert parse_public_key(good) == (kind, blob)


def test_base_records_keep_host_keys_and_read_older_records(tmp_path: Path) -> None:
    keys = tuple(" ".join(k.split()[:2]) for k in public_keys(tmp_path, 2))
    base = bases.BaseImage(
        name="img",
        volume=bases.volume_name("img", "k"),
        path="/pool/x.qcow2",
        format="qcow2",
        virtual_size=1,
        source="/images/tiny-abc/disk.qcow2",
        source_key="k",
        imported_at="2026-01-01T00:00:00Z",
        host_keys=keys,
    )
    data_dir = tmp_path / "data"
    bases.write_record(data_dir, base)
    assert bases.read_record(data_dir, "img") == base
    # A record written before host keys were recorded still reads (no keys: first use).
    path = bases.record_path(data_dir, "img")
    old = json.loads(path.read_text())
    del old["host_keys"]
    path.write_text(json.dumps(old))
    record = bases.read_record(data_dir, "img")
    assert record is not None and record.host_keys == ()


def test_a_seeded_base_pins_its_keys_before_boot_and_logs_in_strictly(
    settings: Settings, conn: Any, routes_file: Path, tmp_path: Path
) -> None:
    probes = ReadyProbes()
    manager = make_manager(settings, conn, routes_file, probes=probes)
    keys = tuple(" ".join(k.split()[:2]) for k in public_keys(tmp_path, 2))
    add_base(manager, "built", host_keys=keys)
    manager.start("seeded", base="built")

    net = network.require(manager.conn, settings.network.name)
    (reserved,) = [h.ip for h in network.dhcp_hosts(net) if h.name == "seeded"]
    known_hosts = settings.vm_dir("seeded") / "known_hosts"
    assert known_hosts.read_text() == "".join(f"{reserved} {key}\n" for key in keys)
    assert stat.S_IMODE(known_hosts.stat().st_mode) == 0o600
    _host, login = probes.logins[-1]
    assert login["known_hosts"] == known_hosts
    assert login["record_first_key"] is False


def test_a_base_without_keys_keeps_trust_on_first_use(
    settings: Settings, conn: Any, routes_file: Path
) -> None:
    probes = ReadyProbes()
    manager = make_manager(settings, conn, routes_file, probes=probes)
    add_base(manager, "own")
    manager.start("tofu", base="own")
    assert not (settings.vm_dir("tofu") / "known_hosts").exists()  # nothing pinned beforehand
    assert probes.logins[-1][1]["record_first_key"] is True


def test_rebuild_pins_the_base_keys_again(manager: Manager, tmp_path: Path) -> None:
    keys = (" ".join(public_keys(tmp_path, 1)[0].split()[:2]),)
    add_base(manager, "built", host_keys=keys)
    manager.start("again", base="built")
    known_hosts = manager.settings.vm_dir("again") / "known_hosts"
    known_hosts.write_text("")  # whatever happened to the file, a rebuild pins the base's keys
    manager.rebuild("again")
    assert [e.keytype + " " + e.blob for e in KnownHosts(known_hosts).entries()] == list(keys)


class WrongKeyProbes(ReadyProbes):
    """The guest answers with a key that is not the pinned one (a man in the middle)."""

    def login(self, host: str, **kwargs: Any) -> bool:
        super().login(host, **kwargs)
        raise HostKeyError(f"SSH host key of {host} changed: pinned A, offered B")


def test_a_wrong_key_at_first_contact_fails_the_start_and_leaves_nothing(
    settings: Settings, conn: Any, routes_file: Path, tmp_path: Path
) -> None:
    manager = make_manager(settings, conn, routes_file, probes=WrongKeyProbes())
    keys = (" ".join(public_keys(tmp_path, 1)[0].split()[:2]),)
    add_base(manager, "built", host_keys=keys)
    with pytest.raises(HostKeyError, match="does not show the SSH host key its image") as err:
        manager.start("mitm", base="built")
    assert err.value.exit_code == 8
    assert "intercepting" in (err.value.hint or "")
    assert manager.list() == []
    assert not settings.vm_dir("mitm").exists()
