"""Several libvirt hosts: place a new VM on the one with room, find a VM on its host.

``hosts = ["qemu+ssh://ci@a/system", "qemu+ssh://ci@b/system"]`` (or ``--uri`` given more
than once) makes one :class:`~stagingvm.vm.manager.Manager` per host, each with the same
settings but its own ``uri``. ``start`` and ``test`` put a new VM on the host with the most
free memory that has room for it (:func:`free_mib`); the host is recorded in the VM's
libvirt metadata, and every later verb finds the VM by asking each host (:meth:`HostSet.locate`):
the hosts themselves are the record, so another runner (or a runner that lost its data dir)
finds the VM too. A host that cannot be reached is named in the error, never skipped in
silence when it might hold the VM.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stagingvm.errors import (
    ConflictError,
    LibvirtUnavailableError,
    NotFoundError,
    StagingVMError,
)
from stagingvm.names import validate_name
from stagingvm.settings import Settings
from stagingvm.virt import domain as vdomain
from stagingvm.virt.connection import translate
from stagingvm.vm.models import VMInfo

if TYPE_CHECKING:
    import libvirt

    from stagingvm.vm.manager import Manager

MakeManager = Callable[[Settings], "Manager"]


def free_mib(conn: libvirt.virConnect) -> int:
    """Memory the host can still give guests, in MiB.

    libvirt's node memory stats (free + buffers + cached: what Linux can hand out without
    swapping) where the driver has them, else ``virNodeGetFreeMemory``; drivers with neither
    (the test driver's custom files) count the node's memory less what its running domains
    hold.
    """
    import libvirt

    try:
        stats = conn.getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS)
        kib = sum(int(stats.get(key, 0)) for key in ("free", "buffers", "cached"))
        if kib > 0:
            return kib // 1024
    except libvirt.libvirtError:
        pass
    try:
        free = int(conn.getFreeMemory())  # bytes; 0 means "unknown" (an error)
        if free > 0:
            return free // (1024 * 1024)
    except libvirt.libvirtError:
        pass
    used_kib = sum(int(dom.info()[2]) for dom in conn.listAllDomains(1))  # 1: active only
    return max(0, int(conn.getInfo()[1]) - used_kib // 1024)


@dataclass(frozen=True)
class HostState:
    """One host as placement saw it: its free memory, or why it could not be asked."""

    uri: str
    free_mib: int | None
    error: str | None = None


class HostSet:
    """The libvirt hosts of the settings (``Settings.host_uris``), one Manager each."""

    def __init__(self, settings: Settings, make: MakeManager) -> None:
        self.settings = settings
        self.uris: tuple[str, ...] = tuple(dict.fromkeys(settings.host_uris))
        self._make = make
        self._managers: dict[str, Manager] = {}

    @property
    def several(self) -> bool:
        return len(self.uris) > 1

    def manager(self, uri: str) -> Manager:
        """The Manager of host *uri* (its connection is opened on first use)."""
        if uri not in self._managers:
            self._managers[uri] = self._make(dataclasses.replace(self.settings, uri=uri))
        return self._managers[uri]

    # -- finding a VM -----------------------------------------------------------------------

    def locate(self, name: str) -> Manager:
        """The Manager of the host that holds stagingvm's VM *name*.

        NotFoundError when no host has it (naming any host that could not be asked),
        ConflictError when two hosts have a VM of that name.
        """
        found, down = self._holders(validate_name(name))
        if len(found) > 1:
            raise ConflictError(
                f"VM {name} exists on several hosts: {', '.join(found)}",
                hint="destroy the extra one with `pr-test-vm --uri URI destroy NAME`",
            )
        if found:
            return self.manager(found[0])
        if not self.several and down:
            raise down[0][1]
        raise NotFoundError(
            f"no VM named {name} on {_hosts_phrase(self.uris)}" + _down_phrase(down),
            hint="`pr-test-vm list` shows the VMs of every host",
        )

    def _holders(self, name: str) -> tuple[list[str], list[tuple[str, StagingVMError]]]:
        found: list[str] = []
        down: list[tuple[str, StagingVMError]] = []
        for uri in self.uris:
            try:
                dom = vdomain.lookup(self.manager(uri).conn, name)
                if dom is not None and vdomain.facts(dom).metadata is not None:
                    found.append(uri)
            except Exception as exc:
                down.append((uri, _as_error(exc, uri)))
        return found, down

    # -- placing a new VM -------------------------------------------------------------------

    def survey(self) -> list[HostState]:
        """Every host's free memory (or its error), in the settings' order."""
        states = []
        for uri in self.uris:
            try:
                states.append(HostState(uri, free_mib(self.manager(uri).conn)))
            except Exception as exc:
                states.append(HostState(uri, None, str(_as_error(exc, uri))))
        return states

    def place(self, name: str, memory_mib: int, *, base: str | None = None) -> Manager:
        """The host for VM *name*: the one that already holds it (``start`` boots it again,
        or refuses), else the one with the most free memory that has room for
        *memory_mib* (and, if *base* is given, has that base image).

        ResourceError-like ConflictError when no host has room; LibvirtUnavailableError
        when none can be reached.
        """
        if not self.several:
            return self.manager(self.uris[0])
        found, down = self._holders(validate_name(name))
        if found:
            return self.locate(name)
        if down:  # a host we cannot ask might hold the VM: do not make a second one
            raise LibvirtUnavailableError(
                f"cannot tell whether VM {name} exists already" + _down_phrase(down),
                hint="bring the host back, or leave it out with --uri for this run",
            )
        states = self.survey()
        candidates = [
            s
            for s in states
            if s.free_mib is not None
            and s.free_mib >= memory_mib
            and (base is None or self._has_base(s.uri, base))
        ]
        if not candidates:
            seen = "; ".join(
                f"{s.uri}: {s.error}" if s.free_mib is None else f"{s.uri}: {s.free_mib} MiB free"
                for s in states
            )
            need = f"{memory_mib} MiB" + (f" and base image {base}" if base else "")
            raise ConflictError(
                f"no host has room for VM {name} ({need}): {seen}",
                hint="destroy VMs you no longer need (`pr-test-vm list`), or ask for less "
                "memory with --memory",
            )
        best = max(candidates, key=lambda s: s.free_mib or 0)  # first of equals: settings order
        return self.manager(best.uri)

    def _has_base(self, uri: str, base: str) -> bool:
        from stagingvm.virt import bases, storage

        manager = self.manager(uri)
        pool = storage.pool_lookup(manager.conn, manager.settings.pool_name)
        if pool is None:
            return False
        try:
            bases.resolve(pool, manager.settings.data_dir, base)
        except NotFoundError:
            return False
        return True

    # -- every host -------------------------------------------------------------------------

    def list(self) -> tuple[list[VMInfo], list[tuple[str, StagingVMError]]]:
        """Every host's VMs (sorted by name, then host) and the hosts that could not be asked."""
        infos: list[VMInfo] = []
        down: list[tuple[str, StagingVMError]] = []
        for uri in self.uris:
            try:
                infos.extend(self.manager(uri).list())
            except Exception as exc:
                down.append((uri, _as_error(exc, uri)))
        return sorted(infos, key=lambda vm: (vm.name, vm.host or "")), down

    def each(self) -> Sequence[Manager]:
        return [self.manager(uri) for uri in self.uris]


def _as_error(exc: Exception, uri: str) -> StagingVMError:
    if isinstance(exc, StagingVMError):
        return exc
    mapped = translate(exc, uri)
    if mapped is None:
        raise exc
    return mapped


def _hosts_phrase(uris: Sequence[str]) -> str:
    return uris[0] if len(uris) == 1 else f"any of {len(uris)} hosts ({', '.join(uris)})"


def _down_phrase(down: Sequence[tuple[str, StagingVMError]]) -> str:
    if not down:
        return ""
    return "; not reachable: " + "; ".join(f"{uri} ({exc})" for uri, exc in down)
