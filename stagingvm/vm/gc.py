"""``gc``: find and remove what crashed or killed runs left behind.

A crash (SIGKILL, power loss, a libvirtd restart) can leave pieces that nothing removes:
- a VM whose start never finished (its ``vms/NAME/starting`` marker is still there) or, with
  *older_than*, any stagingvm VM created longer ago than that;
- KVM probe domains (``stagingvm-accel-probe-*``) whose prober is gone;
- volumes: an overlay ``vm-NAME.qcow2`` with no domain, a base volume no record names and
  nothing uses (a killed import, a base retired while in use);
- ``tmp/NAME.*`` of a killed import, and the ``qemu-img`` still converting into it;
- DHCP host entries and VM directories of VMs that no longer exist.

Every piece is judged under the lock that its owner would hold (the VM lock, the import lock,
the volume lock), taken at once or not at all: what a live command is using is never touched
(it is reported as busy). Foreign domains are never looked at beyond their names.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stagingvm import datadir, locks
from stagingvm.errors import ConflictError, InvalidInputError
from stagingvm.names import NAME_RE
from stagingvm.virt import bases, network, storage
from stagingvm.virt import domain as vdomain
from stagingvm.virt.accel.accel import accel_dir
from stagingvm.vm.host import VMHost, overlay_name
from stagingvm.vm.start import STARTING_MARKER
from stagingvm.vm.teardown import destroy_locked

if TYPE_CHECKING:
    import libvirt

PROBE_PREFIX = "stagingvm-accel-probe-"
PROBE_GRACE = 300.0  # seconds: far beyond a probe's own time-out (it destroys its domain)
OVERLAY_RE = re.compile(r"vm-([a-z0-9][a-z0-9-]{0,62})\.qcow2")
DURATION_RE = re.compile(r"(\d+)([smhd])")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90s``, ``30m``, ``2h``, ``7d`` -> seconds; InvalidInputError otherwise."""
    match = DURATION_RE.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise InvalidInputError(
            f"invalid duration {text!r}", hint="use a positive whole number and s, m, h or d: 2h"
        )
    return float(int(match.group(1)) * UNITS[match.group(2)])


@dataclass(frozen=True)
class Leftover:
    kind: str  # vm | probe-domain | volume | tmp | process | dhcp-host | vm-dir
    name: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "reason": self.reason}


@dataclass
class Report:
    dry_run: bool
    found: list[Leftover] = field(default_factory=list)
    removed: list[Leftover] = field(default_factory=list)
    failed: list[tuple[Leftover, str]] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "found": [item.to_json() for item in self.found],
            "removed": [item.to_json() for item in self.removed],
            "failed": [{**item.to_json(), "error": error} for item, error in self.failed],
            "busy": sorted(self.busy),
        }


class _Collector:
    def __init__(self, host: VMHost, *, dry_run: bool) -> None:
        self.host = host
        self.report = Report(dry_run=dry_run)

    def found(self, item: Leftover, remove: Callable[[], object]) -> None:
        self.report.found.append(item)
        if self.report.dry_run:
            return
        try:
            remove()
        except Exception as exc:
            self.report.failed.append((item, str(exc)))
        else:
            self.report.removed.append(item)

    @contextlib.contextmanager
    def vm_locked(self, name: str) -> Iterator[bool]:
        """Hold VM *name*'s lock if it is free at once (yields False, reported busy, if not)."""
        try:
            with locks.vm_lock(self.host.settings.locks_dir, name, timeout=0):
                yield True
        except ConflictError:
            self.report.busy.append(f"VM {name}")
            yield False


def collect(host: VMHost, *, older_than: float | None = None, dry_run: bool = True) -> Report:
    """Find (and unless *dry_run*, remove) the leftovers of crashed runs on *host*."""
    col = _Collector(host, dry_run=dry_run)
    now = datetime.now(UTC)
    _vms(col, now, older_than)
    _probe_domains(col)
    pool = storage.pool_lookup(host.conn, host.settings.pool_name)
    net = host.network()
    _dhcp_hosts(col, net)
    _vm_dirs(col)
    _processes(col)
    _tmp_entries(col)
    if pool is not None and pool.isActive():
        _volumes(col, pool)
    return col.report


def _vms(col: _Collector, now: datetime, older_than: float | None) -> None:
    settings = col.host.settings
    for _dom, found in vdomain.owned_domains(col.host.conn):
        name, meta = found.name, found.metadata
        if meta is None:
            continue
        reason = None
        if (settings.vm_dir(name) / STARTING_MARKER).exists():
            reason = "its start never finished (the command was killed)"
        elif older_than is not None and (now - meta.created_at).total_seconds() > older_than:
            reason = f"created {meta.created_at:%Y-%m-%dT%H:%M:%SZ}, older than {older_than:g} s"
        if reason is None:
            continue
        with col.vm_locked(name) as free:
            if free:
                col.found(Leftover("vm", name, reason), functools.partial(_destroy, col.host, name))


def _probe_domains(col: _Collector) -> None:
    import libvirt

    conn = col.host.conn
    work = accel_dir(col.host.settings)
    for dom in conn.listAllDomains(0):
        name = str(dom.name())
        if not name.startswith(PROBE_PREFIX):
            continue
        log = work / f"probe-{name.removeprefix(PROBE_PREFIX)}.log"
        try:
            age = time.time() - log.stat().st_mtime
        except OSError:
            age = None
        if age is not None and age < PROBE_GRACE:
            col.report.busy.append(f"probe domain {name}")
            continue

        def remove(dom: libvirt.virDomain = dom, log: Path = log) -> None:
            with contextlib.suppress(libvirt.libvirtError):
                dom.destroy()
            with contextlib.suppress(libvirt.libvirtError):
                dom.undefine()
            datadir.remove_tree(col.host.settings.data_dir, log)

        col.found(Leftover("probe-domain", name, "its prober is gone"), remove)


def _domain_names(col: _Collector) -> set[str]:
    return {str(dom.name()) for dom in col.host.conn.listAllDomains(0)}


def _dhcp_hosts(col: _Collector, net: libvirt.virNetwork | None) -> None:
    if net is None:
        return
    for entry in network.dhcp_hosts(net):
        name = entry.name
        if not name or NAME_RE.fullmatch(name) is None or name in _domain_names(col):
            continue
        with col.vm_locked(name) as free:
            if free and name not in _domain_names(col):
                col.found(
                    Leftover("dhcp-host", name, f"{entry.ip} reserved for a VM that is gone"),
                    functools.partial(col.host.remove_dhcp, net, name),
                )


def _vm_dirs(col: _Collector) -> None:
    settings = col.host.settings
    try:
        entries = sorted(os.listdir(settings.vms_dir))
    except OSError:
        return
    for name in entries:
        if NAME_RE.fullmatch(name) is None or name in _domain_names(col):
            continue
        with col.vm_locked(name) as free:
            if free and name not in _domain_names(col):
                col.found(
                    Leftover("vm-dir", name, "the directory of a VM that is gone"),
                    functools.partial(
                        datadir.remove_tree, settings.data_dir, settings.vm_dir(name)
                    ),
                )


def _import_busy(col: _Collector, base: str) -> bool:
    return locks.is_held(locks.import_lock_path(col.host.settings.locks_dir, base))


def _tmp_entries(col: _Collector) -> None:
    data_dir = col.host.settings.data_dir
    root = bases.tmp_dir(data_dir)
    try:
        entries = sorted(os.listdir(root))
    except OSError:
        return
    for entry in entries:
        owner = bases.tmp_owner(entry)
        if owner is None:
            continue
        if _import_busy(col, owner):
            col.report.busy.append(f"import of {owner}")
            continue
        col.found(
            Leftover("tmp", str(root / entry), f"temporary files of a killed import of {owner}"),
            functools.partial(datadir.remove_tree, data_dir, root / entry),
        )


def qemu_img_processes(tmp_root: Path, proc: Path = Path("/proc")) -> list[tuple[int, str]]:
    """(pid, tmp entry) of the ``qemu-img`` processes writing below *tmp_root*."""
    prefix = str(tmp_root) + os.sep
    found = []
    for entry in proc.iterdir() if proc.is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not argv or os.path.basename(argv[0].decode(errors="replace")) != "qemu-img":
            continue
        for arg in argv[1:]:
            text = arg.decode(errors="replace")
            if text.startswith(prefix):
                found.append((int(entry.name), text[len(prefix) :].split(os.sep, 1)[0]))
                break
    return found


def _processes(col: _Collector) -> None:
    tmp_root = bases.tmp_dir(col.host.settings.data_dir)
    for pid, entry in qemu_img_processes(tmp_root):
        owner = bases.tmp_owner(entry)
        if owner is None or _import_busy(col, owner):
            continue
        col.found(
            Leftover("process", f"qemu-img[{pid}]", f"converting into {tmp_root / entry}"),
            functools.partial(_kill, pid),
        )


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _volumes(col: _Collector, pool: libvirt.virStoragePool) -> None:
    host = col.host
    conn, data_dir = host.conn, host.settings.data_dir
    current = bases.current_volumes(data_dir)
    for vol in storage.volume_names(pool):
        overlay = OVERLAY_RE.fullmatch(vol)
        if overlay is not None:
            name = overlay.group(1)
            if name in _domain_names(col):
                continue
            with col.vm_locked(name) as free:
                if free and name not in _domain_names(col) and vol == overlay_name(name):
                    col.found(
                        Leftover("volume", vol, "the overlay of a VM that is gone"),
                        functools.partial(storage.delete_volume, pool, vol),
                    )
        elif vol.startswith(bases.BASE_PREFIX) and vol not in current:
            if vol in bases.in_use_volumes(conn, pool):
                continue
            if locks.is_held(locks.volume_lock_path(host.settings.locks_dir, vol)):
                col.report.busy.append(f"volume {vol}")
                continue

            def remove(v: str = vol) -> None:
                if not bases.delete_if_unused(conn, pool, data_dir, v):
                    raise ConflictError(f"{v} came into use")

            col.found(
                Leftover("volume", vol, "a base volume no record names and no VM uses"), remove
            )


def _destroy(host: VMHost, name: str) -> None:
    destroy_locked(host, name, vdomain.lookup(host.conn, name))
