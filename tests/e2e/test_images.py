"""The images themselves, booted for real in the lab: tiny and debian (with docker).

What the lifecycle tests do not look at: the tiny guest's console markers, its baked host
key matching what the build recorded, a clean ACPI poweroff; on the debian image, keys
injected for root *and* a recipe user through SMBIOS credentials (none baked), root
without a password, docker running a container from the local image made at first boot.
Run inside the lab namespace (see tests/e2e/conftest.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from stagingvm.images import UserSpec, get_recipe
from stagingvm.images.cache import MANIFEST_NAME
from stagingvm.ssh.keys import ensure_client_key
from stagingvm.vm import Manager
from tests.e2e.harness import Run, build

USER = "e2e-user"


def ok(proc: object) -> bytes:
    assert getattr(proc, "returncode", 1) == 0, getattr(proc, "stderr", b"")
    out: bytes = getattr(proc, "stdout", b"")
    return out


def recorded_host_keys(disk: Path) -> set[str]:
    manifest = json.loads((disk.parent / MANIFEST_NAME).read_text())
    return {" ".join(k.split()[:2]) for k in manifest["facts"]["ssh_host_keys"]}


def pinned_host_keys(run: Run, name: str) -> set[str]:
    lines = (run.settings.vm_dir(name) / "known_hosts").read_text().splitlines()
    return {" ".join(line.split()[1:3]) for line in lines if line.strip()}


def test_tiny_boot_markers_host_key_and_acpi_poweroff(
    run: Run, manager: Manager, tiny_base: str
) -> None:
    disk = build(run, get_recipe("tiny"))
    name = run.vm_name("img-tiny")
    manager.start(name, base=tiny_base)
    try:
        console = (run.settings.vm_dir(name) / "console.log").read_text(errors="replace")
        for marker in (
            "stagingvm-tiny: init started",
            "root key from SMBIOS credential",
            "stagingvm-tiny: got lease",
            "stagingvm-tiny: sshd ready",
        ):
            assert marker in console
        assert pinned_host_keys(run, name) & recorded_host_keys(disk)
        cmdline = ok(run.cli("ssh", name, "--", "cat", "/proc/cmdline")).decode()
        assert "console=ttyS0,115200" in cmdline and "panic=1" in cmdline
        manager.stop(name)  # ACPI power button -> busybox acpid -> poweroff
        assert not manager.status(name).running
        console = (run.settings.vm_dir(name) / "console.log").read_text(errors="replace")
        assert "stagingvm-tiny: power button pressed" in console
    finally:
        manager.destroy(name)


@pytest.fixture(scope="module")
def debian_vm(run: Run, manager: Manager) -> Iterator[str]:
    """The debian image with docker plus a layered recipe user, booted once."""
    recipe = get_recipe("debian", docker=True).layered(
        "e2e-debian-user", users=(UserSpec(USER, groups=("docker",)),)
    )
    disk = build(run, recipe)
    manager.import_base(disk, recipe.name, source_key=str(disk))
    key = ensure_client_key(run.settings.ssh_key_path)
    name = run.vm_name("img-debian")
    manager.start(
        name, base=recipe.name, memory=1024, credentials={f"stagingvm.authorized_keys.{USER}": key}
    )
    try:
        assert pinned_host_keys(run, name) & recorded_host_keys(disk)
        yield name
    finally:
        manager.destroy(name)


def test_debian_root_key_is_injected_not_baked(run: Run, debian_vm: str) -> None:
    out = ok(
        run.cli(
            "ssh",
            debian_vm,
            "--",
            "sh",
            "-c",
            "id -un; getent shadow root | cut -d: -f2; hostname; "
            "test -s /etc/machine-id && echo machine-id-set",
        )
    )
    assert out.decode().split() == ["root", "*", "stagingvm-debian", "machine-id-set"]


def test_debian_recipe_user_gets_its_key_from_a_credential(run: Run, debian_vm: str) -> None:
    key = ensure_client_key(run.settings.ssh_key_path)
    out = ok(
        run.cli(
            "ssh",
            f"{USER}@{debian_vm}",
            "--",
            "sh",
            "-c",
            "id -un; stat -c '%U %a' ~/.ssh ~/.ssh/authorized_keys; cat ~/.ssh/authorized_keys",
        )
    )
    lines = out.decode().splitlines()
    assert lines[:3] == [USER, f"{USER} 700", f"{USER} 600"]
    assert lines[3].split()[:2] == key.split()[:2]
    status = ok(
        run.cli(
            "ssh",
            debian_vm,
            "--",
            "systemctl",
            "show",
            "-p",
            "Result",
            "systemd-tmpfiles-setup.service",
        )
    )
    assert status.decode().strip() == "Result=success"


def test_debian_docker_runs_the_local_image(run: Run, debian_vm: str) -> None:
    ok(run.cli("ssh", debian_vm, "--", "systemctl", "start", "stagingvm-docker-import.service"))
    out = ok(
        run.cli(
            "ssh",
            f"{USER}@{debian_vm}",
            "--",
            "docker",
            "run",
            "--rm",
            "stagingvm/busybox:latest",
            "echo",
            "hello-from-busybox",
        )
    )
    assert out.decode().strip() == "hello-from-busybox"
