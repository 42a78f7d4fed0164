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

from stagingvm.images import get_recipe
from stagingvm.images.cache import MANIFEST_NAME
from stagingvm.ssh.keys import ensure_client_key
from stagingvm.vm.manager import Manager
from tests.e2e.harness import E2E_USER as USER
from tests.e2e.harness import Run, build, e2e_recipes


def guest_run(manager: Manager, name: str, argv: list[str], *, user: str | None = None) -> str:
    """Run *argv* in the guest over SSH (stagingvm's client, pinned host key); stdout."""
    from stagingvm.ssh.client import GuestSSH

    target = manager.ssh_target(name, user)
    with GuestSSH.to(target) as conn:
        result = conn.run(argv, timeout=300)
    assert result.exit_status == 0, (argv, result.stderr)
    return result.stdout.decode()


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
        cmdline = guest_run(manager, name, ["cat", "/proc/cmdline"])
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
    recipe = e2e_recipes()["e2e-debian-user"]
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


def test_debian_root_key_is_injected_not_baked(manager: Manager, debian_vm: str) -> None:
    script = (
        "id -un; getent shadow root | cut -d: -f2; hostname; "
        "test -s /etc/machine-id && echo machine-id-set"
    )
    out = guest_run(manager, debian_vm, ["sh", "-c", script])
    assert out.split() == ["root", "*", "stagingvm-debian", "machine-id-set"]


def test_debian_recipe_user_gets_its_key_from_a_credential(
    run: Run, manager: Manager, debian_vm: str
) -> None:
    key = ensure_client_key(run.settings.ssh_key_path)
    script = "id -un; stat -c '%U %a' ~/.ssh ~/.ssh/authorized_keys; cat ~/.ssh/authorized_keys"
    lines = guest_run(manager, debian_vm, ["sh", "-c", script], user=USER).splitlines()
    assert lines[:3] == [USER, f"{USER} 700", f"{USER} 600"]
    assert lines[3].split()[:2] == key.split()[:2]
    argv = ["systemctl", "show", "-p", "Result", "systemd-tmpfiles-setup.service"]
    assert guest_run(manager, debian_vm, argv).strip() == "Result=success"


def test_debian_docker_runs_the_local_image(manager: Manager, debian_vm: str) -> None:
    guest_run(manager, debian_vm, ["systemctl", "start", "stagingvm-docker-import.service"])
    argv = ["docker", "run", "--rm", "stagingvm/busybox:latest", "echo", "hello-from-busybox"]
    assert guest_run(manager, debian_vm, argv, user=USER).strip() == "hello-from-busybox"
