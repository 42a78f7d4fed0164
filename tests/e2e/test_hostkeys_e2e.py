"""Host keys known before first contact, on the tiny guest.

The image builder records each image's SSH host keys in its manifest. Importing the builder's
disk carries them into the base; ``start`` pins them before the guest runs and accepts no
other key. Proven both ways: a VM of the real image logs in, and the same disk imported with
a manifest that names another key is refused at first contact (exit 8), leaving nothing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import libvirt

from stagingvm.images.cache import MANIFEST_NAME
from stagingvm.ssh.client import GuestSSH
from stagingvm.ssh.keys import ensure_client_key
from stagingvm.ssh.known_hosts import KnownHosts
from stagingvm.virt import bases
from stagingvm.virt import domain as vdomain
from stagingvm.vm.manager import Manager
from tests.e2e.harness import Run, build


def manifest_keys(disk: Path) -> list[str]:
    manifest = json.loads((disk.parent / MANIFEST_NAME).read_text())
    return [" ".join(key.split()[:2]) for key in manifest["facts"]["ssh_host_keys"]]


def test_a_builder_image_is_pinned_before_first_contact(
    run: Run, manager: Manager, tiny_base: str
) -> None:
    keys = manifest_keys(build(run, "tiny"))
    record = bases.read_record(run.settings.data_dir, tiny_base)
    assert record is not None and list(record.host_keys) == keys and keys
    name = run.vm_name("seeded")
    try:
        info = manager.start(name, base=tiny_base)
        target = manager.ssh_target(name)
        pinned = KnownHosts(target.known_hosts).entries()
        assert [(e.host, f"{e.keytype} {e.blob}") for e in pinned] == [(info.ip, k) for k in keys]
        with GuestSSH.to(target) as ssh:
            assert ssh.run(["cat", "/proc/sys/kernel/hostname"], timeout=60).exit_status == 0
        assert KnownHosts(target.known_hosts).entries() == pinned  # nothing else recorded
    finally:
        manager.destroy(name)


def test_a_wrong_recorded_key_is_refused_at_first_contact(
    run: Run, conn: libvirt.virConnect, tmp_path: Path
) -> None:
    disk = build(run, "tiny")
    impostor = tmp_path / "tiny-impostor" / "disk.qcow2"
    impostor.parent.mkdir()
    shutil.copyfile(disk, impostor)
    manifest = json.loads((disk.parent / MANIFEST_NAME).read_text())
    manifest["facts"]["ssh_host_keys"] = [ensure_client_key(tmp_path / "not_the_host_key")]
    (impostor.parent / MANIFEST_NAME).write_text(json.dumps(manifest))

    # `build --image` of a builder disk carries the keys of the manifest beside it.
    built = run.cli("build", "--image", str(impostor), "--name", "tiny-impostor", "--json")
    assert built.returncode == 0, built.stderr.decode(errors="replace")
    assert json.loads(built.stdout)["host_keys"] == [
        " ".join(k.split()[:2]) for k in manifest["facts"]["ssh_host_keys"]
    ]
    name = run.vm_name("impostor")
    started = run.cli("start", name, "--base", "tiny-impostor")
    stderr = started.stderr.decode(errors="replace")
    assert started.returncode == 8, stderr  # HostKeyError
    assert "does not show the SSH host key its image was built with" in stderr
    assert vdomain.lookup(conn, name) is None
    assert not run.settings.vm_dir(name).exists()
