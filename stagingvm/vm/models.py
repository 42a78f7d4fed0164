"""The records the Manager hands to its callers (the CLI, the checks, the tests)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stagingvm.virt.domain import format_time

# The systemd credentials (SMBIOS) that carry SSH keys into a guest: root's, and a user's own.
ROOT_KEY_CREDENTIAL = "ssh.authorized_keys.root"
USER_KEY_CREDENTIAL = "stagingvm.authorized_keys.{user}"


@dataclass(frozen=True)
class VMInfo:
    """One stagingvm VM as ``status`` and ``list`` show it."""

    name: str
    state: str
    ip: str | None
    mac: str | None
    memory_mib: int
    vcpus: int
    domain_type: str
    created_at: datetime
    base: str
    base_volume: str
    pr_ref: str | None
    label: str | None
    disk_path: str | None
    disk_allocation: int | None
    console_log: str | None
    snapshots: tuple[str, ...] = ()
    """Names of its snapshots (``pr-test-vm snapshot``), oldest first."""
    host: str | None = None
    """The libvirt URI of the host it runs on (recorded in its metadata when it was made)."""

    @property
    def running(self) -> bool:
        return self.state == "running"

    def age_seconds(self, now: datetime | None = None) -> float:
        return ((now or datetime.now(UTC)) - self.created_at).total_seconds()

    def uptime_seconds(self, now: datetime | None = None) -> float | None:
        """Time since start while running (a VM is started once, when it is created)."""
        return self.age_seconds(now) if self.running else None

    def to_json(self, now: datetime | None = None) -> dict[str, Any]:
        """The schema of ``status --json`` and of each item of ``list --json``."""
        uptime = self.uptime_seconds(now)
        return {
            "name": self.name,
            "state": self.state,
            "ip": self.ip,
            "mac": self.mac,
            "memory_mib": self.memory_mib,
            "vcpus": self.vcpus,
            "domain_type": self.domain_type,
            "created_at": format_time(self.created_at),
            "age_seconds": round(self.age_seconds(now)),
            "uptime_seconds": round(uptime) if uptime is not None else None,
            "base": self.base,
            "base_volume": self.base_volume,
            "pr_ref": self.pr_ref,
            "label": self.label,
            "disk": {"path": self.disk_path, "allocation_bytes": self.disk_allocation},
            "console_log": self.console_log,
            "snapshots": list(self.snapshots),
            "host": self.host,
        }
