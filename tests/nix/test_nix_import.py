"""Build with the real nix, then import into a real libvirt pool (the lab's libvirtd).

The same two calls ``pr-test-vm build FLAKE#HOST`` makes: ``build_target`` then
``import_result``. A second build of the same store path imports nothing. Uses a network and
a pool of its own ("nix-…"), removed afterwards; no VM is booted.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stagingvm.nixbuild.build import build_target, import_result
from stagingvm.settings import NetworkSettings, Settings, SSHSettings
from stagingvm.virt.bases import BaseImage

pytestmark = [pytest.mark.nix, pytest.mark.e2e]

NIX_OPTIONS = [("substituters", ""), ("sandbox", "false")]
SOCKET = Path("/var/run/libvirt/libvirt-sock")


@pytest.fixture
def lab_settings(tmp_path: Path) -> Iterator[Settings]:
    if not SOCKET.exists():
        pytest.skip("no system libvirtd (start the lab: pr-test-vm lab up)")
    settings = Settings(
        uri="qemu:///system",
        network=NetworkSettings(
            name="nix-net",
            bridge="virbr-nixt",
            subnet="192.168.177.0/24",
            dhcp_start="192.168.177.10",
            dhcp_end="192.168.177.50",
        ),
        pool_name="nix-pool",
        storage_pool=tmp_path / "pool",
        data_dir=tmp_path / "data",
        ssh=SSHSettings(key=tmp_path / "keys" / "id_ed25519"),
    )
    yield settings
    _remove_pool_and_network(settings)


def _remove_pool_and_network(settings: Settings) -> None:
    import libvirt

    conn = libvirt.open(settings.uri)
    try:
        with contextlib.suppress(libvirt.libvirtError):
            pool = conn.storagePoolLookupByName(settings.pool_name)
            for vol in pool.listAllVolumes(0):
                vol.delete(0)
            if pool.isActive():
                pool.destroy()
            pool.undefine()
        with contextlib.suppress(libvirt.libvirtError):
            net = conn.networkLookupByName(settings.network.name)
            if net.isActive():
                net.destroy()
            net.undefine()
    finally:
        conn.close()
    shutil.rmtree(settings.storage_pool, ignore_errors=True)


def _pool_volumes(settings: Settings) -> list[str]:
    import libvirt

    conn = libvirt.open(settings.uri)
    try:
        return sorted(v.name() for v in conn.storagePoolLookupByName("nix-pool").listAllVolumes(0))
    finally:
        conn.close()


def test_build_then_import_is_keyed_by_store_path(
    flake_dir: Path, test_image: Path, lab_settings: Settings
) -> None:
    from stagingvm.vm.manager import Manager

    manager = Manager(lab_settings, domain_type="qemu")
    result = build_target(f"{flake_dir}#x", lab_settings, nix_options=NIX_OPTIONS, name="nixt-x")
    first: Any = import_result(result, manager)
    assert isinstance(first, BaseImage)
    assert first.name == "nixt-x" and first.source_key == result.store_path
    assert not first.reused
    assert first.virtual_size == 8 * 1024 * 1024  # the fixture's qcow2 made it into the pool
    volumes = _pool_volumes(lab_settings)
    assert len(volumes) == 1

    again = build_target(f"{flake_dir}#x", lab_settings, nix_options=NIX_OPTIONS, name="nixt-x")
    assert again.store_path == result.store_path
    second: Any = import_result(again, manager)
    assert second.reused and second.volume == first.volume
    assert _pool_volumes(lab_settings) == volumes


def test_cli_build_target_imports_the_image(
    flake_dir: Path, test_image: Path, lab_settings: Settings, tmp_path: Path
) -> None:
    """``pr-test-vm build FLAKE#HOST --name N --json`` as a user runs it (nix settings from
    NIX_CONFIG: no binary cache is reachable here)."""
    import json
    import os
    import subprocess
    import sys

    s = lab_settings
    config = tmp_path / "config.toml"
    config.write_text(
        f'pool_name = "{s.pool_name}"\nstorage_pool = "{s.storage_pool}"\n'
        f'data_dir = "{s.data_dir}"\n[network]\nname = "{s.network.name}"\n'
        f'bridge = "{s.network.bridge}"\nsubnet = "{s.network.subnet}"\n'
        f'dhcp_start = "{s.network.dhcp_start}"\ndhcp_end = "{s.network.dhcp_end}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGINGVM_")}
    env.update(
        {
            "STAGINGVM_CONFIG": str(config),
            "NIX_CONFIG": "substituters =\nsandbox = false",
            "FIXTURE_QCOW2": str(test_image),
        }
    )
    code = "import sys; sys.argv[0] = 'pr-test-vm'; from stagingvm.cli.app import main; main()"
    argv = [sys.executable, "-c", code, "build", f"{flake_dir}#x", "--name", "nixt-cli", "--json"]
    first = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    assert doc["name"] == "nixt-cli" and doc["source_key"].startswith("/nix/store/")
    assert (s.data_dir / "gcroots" / "nixt-cli").is_symlink()
    assert list((s.data_dir / "logs").glob("nix-nixt-cli-*.log"))
    second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["volume"] == doc["volume"]
