"""The Manager: the lifecycle of stagingvm VMs (import, start, stop, destroy, rebuild, status).

Every verb validates the name before touching anything, takes the VM's lock, and works only on
domains that carry stagingvm's metadata. ``start`` undoes what it created when it fails (unless
``keep_on_failure``); ``destroy`` removes everything a start made: the domain, its overlay, its
DHCP host entry and its directory (console log, pinned host keys).
"""

from __future__ import annotations

import functools
import shutil
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

from stagingvm import locks
from stagingvm.boot import boot
from stagingvm.cleanup import Undo
from stagingvm.errors import (
    ConfigError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    StagingVMError,
)
from stagingvm.models import SSHTarget, VMInfo
from stagingvm.names import validate_name
from stagingvm.progress import NULL_PROGRESS, Progress
from stagingvm.readiness import Guest, Probes, SSHProbes, wait_until_ready
from stagingvm.settings import Settings
from stagingvm.virt import address, bases, network, storage
from stagingvm.virt import domain as vdomain
from stagingvm.virt.bases import BaseImage
from stagingvm.virt.connection import connect, error_code, translate
from stagingvm.virt.subnets import PROC_ROUTE
from stagingvm.waits import Clock, MonotonicClock, Phase, PhaseRunner

if TYPE_CHECKING:
    import libvirt

__all__ = ["BaseImage", "Manager", "SSHTarget", "VMInfo"]

ROOT_KEY_CREDENTIAL = "ssh.authorized_keys.root"
USER_KEY_CREDENTIAL = "stagingvm.authorized_keys.{user}"
MAX_TEXT = 200


P = ParamSpec("P")
R = TypeVar("R")


def _libvirt_errors(
    method: Callable[Concatenate[Manager, P], R],
) -> Callable[Concatenate[Manager, P], R]:
    """Let no raw libvirt error out of a public verb: map it to a stagingvm error."""

    @functools.wraps(method)
    def wrapper(self: Manager, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            mapped = translate(exc, self.settings.uri)
            if mapped is None:
                raise
            raise mapped from exc

    return wrapper


def overlay_name(name: str) -> str:
    return f"vm-{name}.qcow2"


def _check_text(value: str | None, what: str) -> None:
    if value is not None and (len(value) > MAX_TEXT or not value.isprintable()):
        raise InvalidInputError(f"{what} must be printable text of at most {MAX_TEXT} characters")


def _check_positive(value: int | None, what: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InvalidInputError(f"{what} must be a positive whole number, not {value!r}")


def _make_vm_dir(vm_dir: Path) -> None:
    try:
        vm_dir.mkdir(parents=True, mode=0o755)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the VM directory {vm_dir}: {exc.strerror}",
            hint="run as root, or set data_dir to a directory you can write",
        ) from exc


def login_key(settings: Settings, user: str) -> Path:
    """The key to log in as guest *user*: the user's own if stagingvm made one
    (``start --user-key USER``), else stagingvm's key."""
    from stagingvm.ssh.keys import user_key_path

    if user != settings.ssh.user:
        own = user_key_path(settings.keys_dir, user)
        if own.exists():
            return own
    return settings.ssh_key_path


class Manager:
    """Lifecycle of stagingvm VMs on one libvirt connection.

    *domain_type* ("kvm" or "qemu") and *timeout_factor* may come from the caller; without
    them ``stagingvm.accel.resolve_accel`` decides from ``settings.accel`` on the first start
    (it runs a probe guest to see whether KVM really works).
    *conn*, *clock*, *probes* and *routes_path* let tests drive it on libvirt's test driver.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        progress: Progress = NULL_PROGRESS,
        conn: libvirt.virConnect | None = None,
        domain_type: str | None = None,
        timeout_factor: float | None = None,
        lock_timeout: float = locks.DEFAULT_TIMEOUT,
        clock: Clock | None = None,
        probes: Probes | None = None,
        routes_path: Path = PROC_ROUTE,
    ) -> None:
        if domain_type not in (None, "kvm", "qemu"):
            raise InvalidInputError(f"domain type must be kvm or qemu, not {domain_type!r}")
        self.settings = settings
        self.progress = progress
        self._conn = conn
        self._domain_type = domain_type
        self._timeout_factor = timeout_factor
        self._lock_timeout = lock_timeout
        self._clock = clock or MonotonicClock()
        self._probes = probes or SSHProbes()
        self._routes_path = routes_path

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def conn(self) -> libvirt.virConnect:
        if self._conn is None:
            self._conn = connect(self.settings.uri)
        return self._conn

    def _vm_lock(self, name: str, *, refuse_existing: bool = False) -> locks.AbstractLock:
        check = (lambda: self._refuse_existing(name)) if refuse_existing else None
        return locks.vm_lock(
            self.settings.locks_dir, name, timeout=self._lock_timeout, while_waiting=check
        )

    def _host_lock(self) -> locks.AbstractLock:
        return locks.host_lock(self.settings.locks_dir, timeout=self._lock_timeout)

    def _refuse_existing(self, name: str) -> None:
        if vdomain.lookup(self.conn, name) is not None:
            raise ConflictError(
                f"a VM (libvirt domain) named {name!r} already exists",
                hint=f"pick another name, or `pr-test-vm rebuild {name}` / "
                f"`pr-test-vm destroy {name}` if it is stagingvm's",
            )

    def _accel(self) -> tuple[str, float]:
        """The domain type and the time-out factor for new guests (decided once)."""
        if self._domain_type is None:
            self._domain_type, decided = self._resolve_accel()
            if self._timeout_factor is None:
                self._timeout_factor = decided
        factor = self._timeout_factor
        if factor is None:
            factor = self.settings.timeouts.tcg_factor if self._domain_type == "qemu" else 1.0
        return self._domain_type, factor

    def _resolve_accel(self) -> tuple[str, float | None]:
        """``stagingvm.accel.resolve_accel`` decides (it probes KVM by running a guest);
        without that module, ``settings.accel`` maps kvm -> kvm, anything else -> qemu (TCG)."""
        try:
            from stagingvm.accel import resolve_accel  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            if self.settings.accel == "kvm":
                return "kvm", None
            if self.settings.accel == "auto":
                self.progress.note("no KVM detection available: using software emulation (TCG)")
            return "qemu", None
        decision = resolve_accel(self.settings, self.conn, progress=self.progress)
        if decision.warning:
            self.progress.note(decision.warning)
        return str(decision.domain_type), float(decision.timeout_factor)

    def _ensure_host(self) -> libvirt.virStoragePool:
        """Network and pool, idempotently, under the host lock; returns the pool."""
        with self._host_lock():
            network.ensure_network(
                self.conn,
                self.settings.network,
                progress=self.progress,
                routes_path=self._routes_path,
            )
            storage.ensure_pool(
                self.conn,
                self.settings.pool_name,
                self.settings.storage_pool,
                progress=self.progress,
            )
        return storage.require_pool(self.conn, self.settings.pool_name)

    def _client_key_line(self) -> str:
        from stagingvm.ssh.keys import ensure_client_key

        return ensure_client_key(self.settings.ssh_key_path)

    def _network(self) -> libvirt.virNetwork | None:
        return network.lookup(self.conn, self.settings.network.name)

    # -- base images ------------------------------------------------------------------------

    @_libvirt_errors
    def import_base(self, image: Path, name: str, *, source_key: str | None = None) -> BaseImage:
        """Copy *image* into the pool as the read-only base *name* (no-op for a known key)."""
        validate_name(name, what="base image name")
        image = Path(image)
        if not image.is_file():
            raise NotFoundError(f"image {image} does not exist or is not a file")
        pool = self._ensure_host()
        with self._host_lock():
            base = bases.import_base(
                self.conn,
                pool,
                self.settings.data_dir,
                image,
                name,
                source_key=source_key,
                progress=self.progress,
            )
            self._prune_bases(pool, name)
        return base

    def _prune_bases(self, pool: libvirt.virStoragePool, name: str) -> None:
        """Delete old volumes of base *name* that no stagingvm domain still uses."""
        in_use = {
            found.metadata.base_volume
            for _dom, found in vdomain.owned_domains(self.conn)
            if found.metadata is not None
        }
        for vol in bases.stale_volumes(pool, self.settings.data_dir, name):
            if vol not in in_use:
                storage.delete_volume(pool, vol)

    # -- lifecycle --------------------------------------------------------------------------

    @_libvirt_errors
    def start(
        self,
        name: str,
        *,
        base: str | None = None,
        wait: bool = True,
        keep_on_failure: bool = False,
        pr_ref: str | None = None,
        label: str | None = None,
        memory: int | None = None,
        vcpus: int | None = None,
        credentials: Mapping[str, str] | None = None,
    ) -> VMInfo:
        """Create VM *name* from base *base* (default: the base of the same name) and boot it.

        A stopped VM of stagingvm's own is booted again as it is (same disk, MAC and address);
        the creation options (base, memory, ...) apply only to a new VM.
        """
        validate_name(name)
        base_name = validate_name(base if base is not None else name, what="base image name")
        _check_text(pr_ref, "the PR ref")
        _check_text(label, "the label")
        _check_positive(memory, "memory (MiB)")
        _check_positive(vcpus, "vcpus")
        for cred in credentials or {}:
            vdomain.credential_entry(cred, "x")  # validates the credential name
        if self._is_owned_and_stopped(name):
            creating = [base, pr_ref, label, memory, vcpus, credentials or None]
            if any(option is not None for option in creating):
                raise ConflictError(
                    f"VM {name} already exists (stopped); options for a new VM do not apply",
                    hint=f"`pr-test-vm start {name}` boots it again as it is; "
                    f"`pr-test-vm destroy {name}` first for a new one",
                )
            return self._start_again(name, wait=wait, keep_on_failure=keep_on_failure)
        self._refuse_existing(name)
        with self._vm_lock(name, refuse_existing=True):
            self._refuse_existing(name)
            return self._start_locked(
                name,
                base_name=base_name,
                wait=wait,
                keep_on_failure=keep_on_failure,
                pr_ref=pr_ref,
                label=label,
                memory=memory or self.settings.memory,
                vcpus=vcpus or self.settings.vcpus,
                credentials=dict(credentials or {}),
            )

    def _is_owned_and_stopped(self, name: str) -> bool:
        dom = vdomain.lookup(self.conn, name)
        if dom is None:
            return False
        found = vdomain.facts(dom)
        return (
            found is not None
            and found.metadata is not None
            and vdomain.state(dom) in vdomain.DEAD_STATES
        )

    def _start_again(self, name: str, *, wait: bool, keep_on_failure: bool) -> VMInfo:
        """Boot the stopped stagingvm VM *name* again; on failure it is left shut off."""
        with self._vm_lock(name):
            dom, found = vdomain.require_owned(self.conn, name)
            if vdomain.state(dom) not in vdomain.DEAD_STATES:
                raise ConflictError(
                    f"VM {name} is already running",
                    hint=f"`pr-test-vm ssh {name}`, or `pr-test-vm rebuild {name}` for a fresh one",
                )
            self._ensure_host()  # after a host reboot the network may be down
            _domain_type, factor = self._accel()
            net = network.require(self.conn, self.settings.network.name)
            boot(dom, self.settings.vm_dir(name) / "console.log", progress=self.progress)
            try:
                if wait and found.mac is not None:
                    self._wait_ready(dom, name, mac=found.mac, net=net, factor=factor)
            except BaseException:
                if keep_on_failure:
                    self.progress.note(f"leaving {name} running for inspection")
                else:
                    vdomain.power_off(dom)
                raise
            return self._info(dom, vdomain.facts(dom), net)

    def _start_locked(
        self,
        name: str,
        *,
        base_name: str,
        wait: bool,
        keep_on_failure: bool,
        pr_ref: str | None,
        label: str | None,
        memory: int,
        vcpus: int,
        credentials: dict[str, str],
        mac: str | None = None,
        ip: str | None = None,
    ) -> VMInfo:
        # Two things run beside the main line: the client key (loading it imports the crypto
        # library, a noticeable part of a second in a fresh process) and libvirt's live update
        # of the DHCP host entry (it restarts dnsmasq: ~0.5 s). The domain starts paused and
        # runs only once its entry is in place, so its first DHCP request always finds it.
        with ThreadPoolExecutor(2, thread_name_prefix=f"stagingvm-start-{name}") as side:
            key_line = side.submit(self._client_key_line)
            return self._start_with(
                side,
                name,
                key_line=key_line.result,
                base_name=base_name,
                wait=wait,
                keep_on_failure=keep_on_failure,
                pr_ref=pr_ref,
                label=label,
                memory=memory,
                vcpus=vcpus,
                credentials=credentials,
                mac=mac,
                ip=ip,
            )

    def _start_with(
        self,
        side: ThreadPoolExecutor,
        name: str,
        *,
        key_line: Callable[[], str],
        base_name: str,
        wait: bool,
        keep_on_failure: bool,
        pr_ref: str | None,
        label: str | None,
        memory: int,
        vcpus: int,
        credentials: dict[str, str],
        mac: str | None,
        ip: str | None,
    ) -> VMInfo:
        settings = self.settings
        pool = self._ensure_host()
        base = bases.resolve(pool, settings.data_dir, base_name)
        base_vol = storage.volume_lookup(pool, base.volume)
        assert base_vol is not None  # resolve() checked it
        domain_type, factor = self._accel()
        net = network.require(self.conn, settings.network.name)
        mac = (mac or network.new_mac(net)).lower()
        vm_dir = settings.vm_dir(name)
        console_log = vm_dir / "console.log"

        def spec(disk: str) -> vdomain.DomainSpec:
            creds = {**credentials, ROOT_KEY_CREDENTIAL: key_line()}
            if settings.ssh.user != "root":
                creds[USER_KEY_CREDENTIAL.format(user=settings.ssh.user)] = key_line()
            return vdomain.DomainSpec(
                name=name,
                uuid=str(uuid.uuid4()),
                domain_type=domain_type,
                memory_mib=memory,
                vcpus=vcpus,
                disk_path=disk,
                network=settings.network.name,
                mac=mac,
                console_log=console_log,
                credentials=creds,
                metadata=vdomain.Metadata(
                    created_at=datetime.now(UTC).replace(microsecond=0),
                    base=base.name,
                    base_volume=base.volume,
                    pr_ref=pr_ref,
                    label=label,
                ),
            )

        undo = Undo()
        try:
            # Nothing of this name exists as a domain (we hold its lock): leftovers of an
            # interrupted run are stale and go first.
            shutil.rmtree(vm_dir, ignore_errors=True)
            storage.delete_volume(pool, overlay_name(name))
            _make_vm_dir(vm_dir)
            undo.push("remove the VM directory", lambda: shutil.rmtree(vm_dir))
            reservation = side.submit(self._reserve_address, net, name, mac, ip)
            try:
                dom = self._define_and_boot(
                    name,
                    pool=pool,
                    base=base,
                    base_vol=base_vol,
                    undo=undo,
                    spec=spec,
                    before_run=reservation.result,
                )
            finally:
                if reservation.exception() is None:  # waits for it
                    undo.push("remove the DHCP host entry", lambda: self._remove_dhcp(net, name))
            if wait:
                self._wait_ready(dom, name, mac=mac, net=net, factor=factor)
        except BaseException:
            if keep_on_failure:
                self.progress.note(f"keeping {name} for inspection: `pr-test-vm destroy {name}`")
            else:
                for failure in undo.run():
                    self.progress.note(f"clean-up of {name} incomplete: {failure}")
            raise
        return self._info(dom, vdomain.facts(dom), net)

    def _reserve_address(self, net: libvirt.virNetwork, name: str, mac: str, ip: str | None) -> str:
        """The DHCP host entry of VM *name*, under the host lock; an old entry of that name
        (left by an interrupted run) goes first and lends its address."""
        with self._host_lock():
            stale = network.remove_dhcp_host(net, name=name)
            if ip is None and stale is not None:
                ip = stale.ip
            return network.add_dhcp_host(net, self.settings.network, mac=mac, name=name, ip=ip)

    def _define_and_boot(
        self,
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
        with self.progress.phase(f"creating the overlay disk of {name}"):
            overlay = storage.create_overlay(
                pool,
                overlay_name(name),
                backing=base_vol,
                backing_format=base.format,
                capacity=base.virtual_size,
            )
        undo.push("delete the overlay", lambda: storage.delete_volume(pool, overlay_name(name)))
        domain_spec = spec(str(overlay.path()))
        dom = self.conn.defineXML(vdomain.render_domain(domain_spec))
        undo.push("undefine the domain", lambda: vdomain.undefine(dom))
        boot(dom, domain_spec.console_log, progress=self.progress, before_run=before_run)
        undo.push("power off the domain", lambda: vdomain.power_off(dom))
        return dom

    def _wait_ready(
        self,
        dom: libvirt.virDomain,
        name: str,
        *,
        mac: str,
        net: libvirt.virNetwork,
        factor: float,
    ) -> None:
        """Wait through the readiness phases (running, lease, banner, login) for VM *name*."""
        vm_dir = self.settings.vm_dir(name)
        guest = Guest(
            dom=dom,
            mac=mac,
            network=net,
            console_log=vm_dir / "console.log",
            user=self.settings.ssh.user,
            key_path=self.settings.ssh_key_path,
            known_hosts=vm_dir / "known_hosts",
        )
        wait_until_ready(
            guest,
            timeouts=self.settings.timeouts,
            factor=factor,
            probes=self._probes,
            clock=self._clock,
            progress=self.progress,
        )

    def _remove_dhcp(self, net: libvirt.virNetwork, name: str) -> None:
        with self._host_lock():
            network.remove_dhcp_host(net, name=name)

    @_libvirt_errors
    def stop(self, name: str, *, force: bool = False, timeout: float | None = None) -> VMInfo:
        """ACPI shutdown and wait for it (or power off at once with *force*)."""
        validate_name(name)
        with self._vm_lock(name):
            dom, found = vdomain.require_owned(self.conn, name)
            if vdomain.state(dom) not in vdomain.DEAD_STATES:
                if force:
                    dom.destroy()
                else:
                    self._shutdown(dom, found, timeout)
            return self._info(dom, vdomain.facts(dom), self._network())

    def _shutdown(
        self, dom: libvirt.virDomain, found: vdomain.DomainFacts, timeout: float | None
    ) -> None:
        if timeout is None:
            factor = self.settings.timeouts.tcg_factor if found.domain_type == "qemu" else 1.0
            timeout = self.settings.timeouts.shutdown * factor
        dom.shutdown()
        runner = PhaseRunner(
            guest_gone=lambda: None,
            console_tail=lambda n: [],
            clock=self._clock,
            progress=self.progress,
        )
        runner.run(
            Phase(
                "ACPI shutdown",
                timeout,
                lambda: True if vdomain.state(dom) in vdomain.DEAD_STATES else None,
                interval=0.5,
                hint="the guest ignored the ACPI power button: "
                f"`pr-test-vm stop --force {found.name}`",
            )
        )

    @_libvirt_errors
    def destroy(self, name: str) -> None:
        """Remove VM *name* and everything stagingvm made for it."""
        validate_name(name)
        with self._vm_lock(name):
            self._destroy_locked(name)

    def _destroy_locked(self, name: str) -> None:
        dom = vdomain.lookup(self.conn, name)
        if dom is not None:
            vdomain.require_owned(self.conn, name)  # refuses foreign domains
        pool = storage.pool_lookup(self.conn, self.settings.pool_name)
        net = self._network()
        vm_dir = self.settings.vm_dir(name)
        leftovers = (
            vm_dir.exists()
            or (pool is not None and storage.volume_lookup(pool, overlay_name(name)) is not None)
            or (net is not None and any(h.name == name for h in network.dhcp_hosts(net)))
        )
        if dom is None and not leftovers:
            raise NotFoundError(
                f"no VM named {name!r}", hint="`pr-test-vm list` shows the VMs stagingvm manages"
            )
        steps = Undo()  # pushed in reverse: runs power off, undefine, overlay, DHCP, directory
        steps.push("remove the VM directory", lambda: shutil.rmtree(vm_dir, ignore_errors=True))
        if net is not None:
            steps.push("remove the DHCP host entry", lambda: self._remove_dhcp(net, name))
        if pool is not None:
            overlay = overlay_name(name)
            steps.push("delete the overlay", lambda: storage.delete_volume(pool, overlay))
        if dom is not None:
            steps.push("undefine the domain", lambda: vdomain.undefine(dom))
            steps.push("power off the domain", lambda: vdomain.power_off(dom))
        with self.progress.phase(f"destroying {name}"):
            failures = steps.run()
        if failures:
            raise StagingVMError(
                f"destroy of {name} left something behind: " + "; ".join(failures),
                hint=f"run `pr-test-vm destroy {name}` again",
            )

    @_libvirt_errors
    def rebuild(self, name: str, *, wait: bool = True, keep_on_failure: bool = False) -> VMInfo:
        """Destroy *name* and start it again from its base, with the same MAC and address."""
        validate_name(name)
        with self._vm_lock(name):
            _dom, found = vdomain.require_owned(self.conn, name)
            meta = found.metadata
            assert meta is not None
            net = self._network()
            ip = (
                next((h.ip for h in network.dhcp_hosts(net) if h.name == name), None)
                if net is not None
                else None
            )
            # stagingvm's own key is put in afresh; other users' keys (--user-key) stay.
            own = {ROOT_KEY_CREDENTIAL, USER_KEY_CREDENTIAL.format(user=self.settings.ssh.user)}
            credentials = {k: v for k, v in found.credentials.items() if k not in own}
            self._destroy_locked(name)
            return self._start_locked(
                name,
                base_name=meta.base,
                wait=wait,
                keep_on_failure=keep_on_failure,
                pr_ref=meta.pr_ref,
                label=meta.label,
                memory=found.memory_mib,
                vcpus=found.vcpus,
                credentials=credentials,
                mac=found.mac,
                ip=ip,
            )

    # -- queries ----------------------------------------------------------------------------

    @_libvirt_errors
    def status(self, name: str) -> VMInfo:
        validate_name(name)
        dom, found = vdomain.require_owned(self.conn, name)
        return self._info(dom, found, self._network())

    @_libvirt_errors
    def list(self) -> list[VMInfo]:
        """stagingvm's VMs (domains with its metadata), sorted by name."""
        import libvirt

        net = self._network()
        infos = []
        for dom, found in vdomain.owned_domains(self.conn):
            try:
                infos.append(self._info(dom, found, net))
            except libvirt.libvirtError as exc:
                if error_code(exc) != libvirt.VIR_ERR_NO_DOMAIN:
                    raise  # else: destroyed by another command while we listed
        return sorted(infos, key=lambda info: info.name)

    @_libvirt_errors
    def address(self, name: str) -> str:
        """The VM's IPv4 address (lease, then network leases, then guest agent)."""
        validate_name(name)
        dom, found = vdomain.require_owned(self.conn, name)
        ip = None
        if found.mac and vdomain.state(dom) in vdomain.RUNNING_STATES:
            ip = address.lookup_ipv4(dom, found.mac, self._network())
        if ip is None:
            raise NotFoundError(
                f"VM {name} has no IPv4 address (yet)",
                hint=f"is it running and booted? `pr-test-vm status {name}`",
            )
        return ip

    @_libvirt_errors
    def ssh_target(self, name: str, user: str | None = None) -> SSHTarget:
        """How to reach *name* as *user* (see ``login_key``)."""
        user = user or self.settings.ssh.user
        return SSHTarget(
            host=self.address(name),
            port=22,
            user=user,
            key_path=login_key(self.settings, user),
            known_hosts=self.settings.vm_dir(name) / "known_hosts",
        )

    def _info(
        self, dom: libvirt.virDomain, found: vdomain.DomainFacts, net: libvirt.virNetwork | None
    ) -> VMInfo:
        meta = found.metadata
        assert meta is not None
        code = vdomain.state(dom)
        ip = None
        if found.mac and code in vdomain.RUNNING_STATES:
            ip = address.lookup_ipv4(dom, found.mac, net, use_agent=False)
        return VMInfo(
            name=found.name,
            state=vdomain.state_name(code),
            ip=ip,
            mac=found.mac,
            memory_mib=found.memory_mib,
            vcpus=found.vcpus,
            domain_type=found.domain_type,
            created_at=meta.created_at,
            base=meta.base,
            base_volume=meta.base_volume,
            pr_ref=meta.pr_ref,
            label=meta.label,
            disk_path=found.disk_path,
            disk_allocation=self._allocation(found.disk_path),
            console_log=found.console_log,
        )

    def _allocation(self, path: str | None) -> int | None:
        import libvirt

        if path is None:
            return None
        try:
            return int(self.conn.storageVolLookupByPath(path).info()[2])
        except libvirt.libvirtError:
            return None
