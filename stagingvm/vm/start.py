"""The start path: create a VM from a base (overlay, definition, DHCP entry, boot, wait), boot a
stopped one again, and rebuild one from its base.

A new VM is made under its VM lock; every piece it creates pushes an undo step, so a failed
start removes all of them (unless ``keep_on_failure``). A stopped VM booted again is left shut
off when its wait fails. The Manager (``stagingvm.vm.manager``) validates names and calls in here.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from stagingvm import datadir
from stagingvm.config.keys import check_value
from stagingvm.errors import ConfigError, HostKeyError, InvalidInputError
from stagingvm.virt import bases, network, storage
from stagingvm.virt import domain as vdomain
from stagingvm.virt.bases import BaseImage
from stagingvm.virt.boot import boot
from stagingvm.vm.host import VMHost, console_log_path, overlay_name
from stagingvm.vm.hostkeys import seed_known_hosts
from stagingvm.vm.info import info
from stagingvm.vm.models import ROOT_KEY_CREDENTIAL, USER_KEY_CREDENTIAL, VMInfo
from stagingvm.vm.readiness import Guest, wait_until_ready
from stagingvm.vm.teardown import destroy_locked
from stagingvm.vm.undo import Undo

if TYPE_CHECKING:
    import libvirt

MAX_TEXT = 200
STARTING_MARKER = "starting"
"""``vms/NAME/starting``: made first by a new start, removed when it returns; one left behind
with a free VM lock is a start that was killed (``stagingvm.vm.gc`` destroys that VM)."""


@dataclass(frozen=True)
class NewVM:
    """What a new VM is made of (*mac* and *ip* are kept by a rebuild, else chosen afresh)."""

    name: str
    base_name: str
    memory: int
    vcpus: int
    pr_ref: str | None = None
    label: str | None = None
    credentials: dict[str, str] = field(default_factory=dict)
    mac: str | None = None
    ip: str | None = None


def check_options(
    *,
    pr_ref: str | None,
    label: str | None,
    memory: int | None,
    vcpus: int | None,
    credentials: Mapping[str, str] | None,
) -> None:
    """Refuse bad creation options before anything is looked up or created; memory and vCPUs
    by the rule of their settings (``stagingvm.config.keys``), so a flag and a config file
    are held to the same bounds."""
    _check_text(pr_ref, "the PR ref")
    _check_text(label, "the label")
    check_value("memory", memory)
    check_value("vcpus", vcpus)
    for cred in credentials or {}:
        vdomain.credential_entry(cred, "x")  # validates the credential name


def _check_text(value: str | None, what: str) -> None:
    if value is not None and (len(value) > MAX_TEXT or not value.isprintable()):
        raise InvalidInputError(f"{what} must be printable text of at most {MAX_TEXT} characters")


def _make_vm_dir(data_dir: Path, vm_dir: Path) -> None:
    try:
        datadir.ensure_dir(data_dir, vm_dir)
        os.close(datadir.open_file(data_dir, vm_dir / STARTING_MARKER, os.O_WRONLY | os.O_CREAT))
    except ConfigError as exc:
        raise ConfigError(
            f"cannot create the VM directory {vm_dir}: {exc}",
            hint=exc.hint,
        ) from exc


def start_again(
    host: VMHost,
    dom: libvirt.virDomain,
    found: vdomain.DomainFacts,
    *,
    wait: bool,
    keep_on_failure: bool,
) -> VMInfo:
    """Boot the stopped stagingvm VM *dom* again; on failure it is left shut off. The caller
    holds its VM lock and made sure it is stagingvm's and stopped (``VMHost.restartable``)."""
    name = found.name
    host.ensure_host()  # after a host reboot the network may be down
    _domain_type, factor = host.accel()
    net = network.require(host.conn, host.settings.network.name)
    boot(dom, console_log_path(host.settings, name), progress=host.progress)
    try:
        if wait and found.mac is not None:
            wait_ready(host, dom, name, mac=found.mac, net=net, factor=factor)
    except BaseException:
        if keep_on_failure:
            host.progress.note(f"leaving {name} running for inspection")
        else:
            vdomain.power_off(dom)
        raise
    return info(host.conn, dom, vdomain.facts(dom), net)


def start_new(host: VMHost, vm: NewVM, *, wait: bool, keep_on_failure: bool) -> VMInfo:
    """Create and boot *vm*; the caller holds its VM lock and made sure no domain has its name."""
    # Two things run beside the main line: the client key (loading it imports the crypto
    # library, a noticeable part of a second in a fresh process) and libvirt's live update
    # of the DHCP host entry (it restarts dnsmasq: ~0.5 s). The domain starts paused and
    # runs only once its entry is in place, so its first DHCP request always finds it.
    with (
        ThreadPoolExecutor(2, thread_name_prefix=f"stagingvm-start-{vm.name}") as side,
        contextlib.ExitStack() as held,
    ):
        key_line = side.submit(_client_key_line, host)
        return _start_with(
            host,
            side,
            vm,
            held=held,
            key_line=key_line.result,
            wait=wait,
            keep_on_failure=keep_on_failure,
        )


def _client_key_line(host: VMHost) -> str:
    from stagingvm.ssh.keys import ensure_client_key

    return ensure_client_key(host.settings.ssh_key_path)


def _start_with(
    host: VMHost,
    side: ThreadPoolExecutor,
    vm: NewVM,
    *,
    held: contextlib.ExitStack,
    key_line: Callable[[], str],
    wait: bool,
    keep_on_failure: bool,
) -> VMInfo:
    settings = host.settings
    name = vm.name
    pool = host.ensure_host()
    # The base volume's lock, held shared: a re-import does not delete it under this start.
    base = held.enter_context(bases.in_use(pool, settings.data_dir, vm.base_name))
    base_vol = storage.volume_lookup(pool, base.volume)
    assert base_vol is not None  # resolve() checked it
    domain_type, factor = host.accel()
    net = network.require(host.conn, settings.network.name)
    mac = (vm.mac or network.new_mac(net)).lower()
    vm_dir = settings.vm_dir(name)
    console_log = console_log_path(settings, name)
    seeded = bool(base.host_keys)  # else: trust on first use (the wait pins the first key)

    def spec(disk: str) -> vdomain.DomainSpec:
        creds = {**vm.credentials, ROOT_KEY_CREDENTIAL: key_line()}
        if settings.ssh.user != "root":
            creds[USER_KEY_CREDENTIAL.format(user=settings.ssh.user)] = key_line()
        return vdomain.DomainSpec(
            name=name,
            uuid=str(uuid.uuid4()),
            domain_type=domain_type,
            memory_mib=vm.memory,
            vcpus=vm.vcpus,
            disk_path=disk,
            network=settings.network.name,
            mac=mac,
            console_log=console_log,
            credentials=creds,
            metadata=vdomain.Metadata(
                created_at=datetime.now(UTC).replace(microsecond=0),
                base=base.name,
                base_volume=base.volume,
                pr_ref=vm.pr_ref,
                label=vm.label,
                host=settings.uri,
            ),
        )

    undo = Undo()
    try:
        # Nothing of this name exists as a domain (we hold its lock): leftovers of an
        # interrupted run are stale and go first.
        datadir.remove_tree(settings.data_dir, vm_dir)
        storage.delete_volume(pool, overlay_name(name))
        _make_vm_dir(settings.data_dir, vm_dir)
        undo.push("remove the VM directory", lambda: datadir.remove_tree(settings.data_dir, vm_dir))
        reservation = side.submit(_reserve_address, host, net, name, mac, vm.ip)

        def before_run() -> None:
            ip = reservation.result()
            if seeded:  # the guest's keys are known: pinned before its CPUs run
                seed_known_hosts(vm_dir / "known_hosts", ip, base.host_keys)

        try:
            dom = _define_and_boot(
                host,
                name,
                pool=pool,
                base=base,
                base_vol=base_vol,
                undo=undo,
                spec=spec,
                before_run=before_run,
            )
        finally:
            if reservation.exception() is None:  # waits for it
                undo.push("remove the DHCP host entry", lambda: host.remove_dhcp(net, name))
        if wait:
            wait_ready(host, dom, name, mac=mac, net=net, factor=factor, seeded=seeded)
    except BaseException:
        if keep_on_failure:
            host.progress.note(f"keeping {name} for inspection: `pr-test-vm destroy {name}`")
            datadir.remove_tree(settings.data_dir, vm_dir / STARTING_MARKER)
        else:
            for failure in undo.run():
                host.progress.note(f"clean-up of {name} incomplete: {failure}")
        raise
    datadir.remove_tree(settings.data_dir, vm_dir / STARTING_MARKER)
    return info(host.conn, dom, vdomain.facts(dom), net)


def _reserve_address(
    host: VMHost, net: libvirt.virNetwork, name: str, mac: str, ip: str | None
) -> str:
    """The DHCP host entry of VM *name*, under the host lock; an old entry of that name
    (left by an interrupted run) goes first and lends its address."""
    with host.host_lock():
        stale = network.remove_dhcp_host(net, name=name)
        if ip is None and stale is not None:
            ip = stale.ip
        return network.add_dhcp_host(net, host.settings.network, mac=mac, name=name, ip=ip)


def _define_and_boot(
    host: VMHost,
    name: str,
    *,
    pool: libvirt.virStoragePool,
    base: BaseImage,
    base_vol: libvirt.virStorageVol,
    undo: Undo,
    spec: Callable[[str], vdomain.DomainSpec],
    before_run: Callable[[], object],
) -> libvirt.virDomain:
    """Overlay, definition, start; each pushes its undo step."""
    with host.progress.phase(f"creating the overlay disk of {name}"):
        overlay = storage.create_overlay(
            pool,
            overlay_name(name),
            backing=base_vol,
            backing_format=base.format,
            capacity=base.virtual_size,
        )
    undo.push("delete the overlay", lambda: storage.delete_volume(pool, overlay_name(name)))
    domain_spec = spec(str(overlay.path()))
    dom = host.conn.defineXML(vdomain.render_domain(domain_spec))
    undo.push("undefine the domain", lambda: vdomain.undefine(dom))
    boot(dom, domain_spec.console_log, progress=host.progress, before_run=before_run)
    undo.push("power off the domain", lambda: vdomain.power_off(dom))
    return dom


def wait_ready(
    host: VMHost,
    dom: libvirt.virDomain,
    name: str,
    *,
    mac: str,
    net: libvirt.virNetwork,
    factor: float,
    seeded: bool = False,
    pinned: bool = False,
) -> None:
    """Wait through the readiness phases (running, lease, banner, login) for VM *name*.

    *seeded*: its known_hosts holds the keys its image must have, and the login accepts no
    other (else the first key the guest offers is pinned, and later ones must match it).
    *pinned*: its known_hosts already holds the key pinned when it first ran (a VM reverted to
    a snapshot): only that key is accepted, and a refusal is not blamed on the image.
    """
    settings = host.settings
    vm_dir = settings.vm_dir(name)
    guest = Guest(
        dom=dom,
        mac=mac,
        network=net,
        console_log=console_log_path(settings, name),
        user=settings.ssh.user,
        key_path=settings.ssh_key_path,
        known_hosts=vm_dir / "known_hosts",
        record_first_key=not (seeded or pinned),
    )
    try:
        wait_until_ready(
            guest,
            timeouts=settings.timeouts,
            factor=factor,
            probes=host.probes,
            clock=host.clock,
            progress=host.progress,
        )
    except HostKeyError as exc:
        if not seeded:
            raise
        raise HostKeyError(
            f"VM {name} does not show the SSH host key its image was built with: {exc}",
            hint="someone may be intercepting the connection: do not use this VM. If the "
            "image's disk was changed after it was built, rebuild the image "
            "(`pr-test-vm image build NAME --force`) and import it again",
        ) from exc


def rebuild(
    host: VMHost,
    dom: libvirt.virDomain,
    found: vdomain.DomainFacts,
    *,
    wait: bool,
    keep_on_failure: bool,
) -> VMInfo:
    """Destroy VM *dom* and start it again from its base, with the same MAC and address; the
    caller holds its VM lock and looked it up (``vdomain.require_owned``)."""
    name = found.name
    meta = found.metadata
    assert meta is not None
    net = host.network()
    ip = (
        next((h.ip for h in network.dhcp_hosts(net) if h.name == name), None)
        if net is not None
        else None
    )
    # stagingvm's own key is put in afresh; other users' keys (--user-key) stay.
    own = {ROOT_KEY_CREDENTIAL, USER_KEY_CREDENTIAL.format(user=host.settings.ssh.user)}
    credentials = {k: v for k, v in found.credentials.items() if k not in own}
    destroy_locked(host, name, dom)
    vm = NewVM(
        name=name,
        base_name=meta.base,
        memory=found.memory_mib,
        vcpus=found.vcpus,
        pr_ref=meta.pr_ref,
        label=meta.label,
        credentials=credentials,
        mac=found.mac,
        ip=ip,
    )
    return start_new(host, vm, wait=wait, keep_on_failure=keep_on_failure)
