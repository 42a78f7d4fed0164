"""Host set-up: define and start the NAT network and the storage pool, idempotently.

The NixOS module runs this once at boot (``stagingvm-setup.service``) instead of defining
network and pool itself, so the tool is the one source of truth for both. ``start`` and
``build`` do the same on demand (``VMHost.ensure_host``, through ``ensure_network_and_pool``
here); ``ensure_host`` only does it ahead of time, under the same host lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stagingvm import locks
from stagingvm.progress import NULL_PROGRESS, Progress
from stagingvm.settings import Settings
from stagingvm.virt import network, storage
from stagingvm.virt.subnets import PROC_ROUTE

if TYPE_CHECKING:
    import libvirt


@dataclass(frozen=True)
class HostSetup:
    network: str
    subnet: str
    pool: str
    pool_path: str
    drift: list[str] = field(default_factory=list)  # existing objects that differ from settings

    def to_json(self) -> dict[str, Any]:
        return {
            "network": self.network,
            "subnet": self.subnet,
            "pool": self.pool,
            "pool_path": self.pool_path,
            "drift": self.drift,
        }


def ensure_network_and_pool(
    conn: libvirt.virConnect,
    settings: Settings,
    *,
    progress: Progress,
    routes_path: Path = PROC_ROUTE,
) -> list[str]:
    """Define and start the NAT network and the storage pool if missing; the caller holds the
    host lock. Returns the drift: how existing ones differ from *settings* (never redefined)."""
    drift = network.ensure_network(
        conn, settings.network, progress=progress, routes_path=routes_path
    )
    drift += storage.ensure_pool(conn, settings.pool_name, settings.storage_pool, progress=progress)
    return drift


def ensure_host(
    settings: Settings,
    *,
    conn: libvirt.virConnect | None = None,
    progress: Progress = NULL_PROGRESS,
) -> HostSetup:
    """Network + pool + the data dir's folders; reports drift instead of redefining."""
    from stagingvm.virt.connection import connect

    conn = conn if conn is not None else connect(settings.uri)
    for folder in (settings.data_dir, settings.locks_dir, settings.logs_dir, settings.vms_dir):
        folder.mkdir(parents=True, exist_ok=True)
    with locks.host_lock(settings.locks_dir):
        drift = ensure_network_and_pool(conn, settings, progress=progress)
    return HostSetup(
        network=settings.network.name,
        subnet=settings.network.subnet,
        pool=settings.pool_name,
        pool_path=str(settings.storage_pool),
        drift=drift,
    )
