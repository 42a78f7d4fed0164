"""Helpers for the libvirt core's tests (imported by conftest.py and the test modules).

``test:///<path>/testdriver.xml`` gives every *open* a fresh copy of the state in that file,
so each test opens it once (through the cached ``connect``) and forgets it afterwards.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from stagingvm.settings import Settings
from stagingvm.virt import bases, storage
from stagingvm.vm.manager import Manager

TESTS = Path(__file__).resolve().parents[1]
TESTDRIVER_URI = f"test://{TESTS / 'testdriver.xml'}"
GOLDEN = TESTS / "golden"
BASE_SIZE = 1 << 30


class ReadyProbes:
    """SSH probes of a guest that is up: the banner answers and the login works."""

    def __init__(self) -> None:
        self.banners: list[tuple[str, int, float]] = []
        self.logins: list[tuple[str, dict[str, Any]]] = []

    def banner(self, host: str, port: int, timeout: float) -> str | None:
        self.banners.append((host, port, timeout))
        return "SSH-2.0-OpenSSH_9.2 (test)"

    def login(self, host: str, **kwargs: Any) -> bool:
        self.logins.append((host, kwargs))
        return True


class SilentProbes(ReadyProbes):
    """SSH probes of a guest whose sshd never answers."""

    def banner(self, host: str, port: int, timeout: float) -> str | None:
        return None


def make_manager(settings: Settings, conn: Any, routes_file: Path, **kwargs: Any) -> Manager:
    kwargs.setdefault("probes", ReadyProbes())
    return Manager(
        settings,
        conn=conn,
        domain_type="qemu",
        routes_path=routes_file,
        lock_timeout=5,
        **kwargs,
    )


def add_base(
    manager: Manager, name: str = "base", host_keys: tuple[str, ...] = ()
) -> bases.BaseImage:
    """A base volume as ``import_base`` leaves it (the test driver cannot take uploads)."""
    pool = manager.host.ensure_host()
    vol_name = bases.volume_name(name, f"key-{name}")
    vol = pool.createXML(
        storage.render_volume(vol_name, capacity=BASE_SIZE, fmt="qcow2", mode=storage.BASE_MODE),
        0,
    )
    base = bases.BaseImage(
        name=name,
        volume=vol_name,
        path=vol.path(),
        format="qcow2",
        virtual_size=BASE_SIZE,
        source="/nonexistent/disk.qcow2",
        source_key=f"key-{name}",
        imported_at="2026-01-01T00:00:00Z",
        host_keys=host_keys,
    )
    bases.write_record(manager.settings.data_dir, base)
    return base


def with_timeouts(settings: Settings, **timeouts: float) -> Settings:
    return replace(settings, timeouts=replace(settings.timeouts, **timeouts))
