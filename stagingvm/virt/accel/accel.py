"""KVM or TCG: decide by running a guest, never by trusting /dev/kvm or libvirt's capabilities.

Why a probe guest: on some hosts (nested virtualisation, a microVM) ``/dev/kvm`` opens,
``KVM_CREATE_VM`` succeeds, libvirt advertises ``<domain type='kvm'>`` and SeaBIOS even prints
its banner, yet CPU-bound guest code crawls: a Linux kernel never finishes decompressing. So
``auto`` boots a transient, diskless ``kvm`` domain whose payload (``accelprobe/``, beside)
enters long mode, touches memory and runs a 200-million-iteration loop before printing a
marker on its serial console. Working KVM prints it within a second; if the marker does not
appear within a few seconds, or libvirt refuses the domain, stagingvm falls back to software
emulation (domain type ``qemu``) and says why. The verdict is cached per host boot (keyed by
``/proc/sys/kernel/random/boot_id`` and the libvirt URI) under ``<data_dir>/accel/``.

A "no" the host gives at once (``refusal.py``: no 'kvm' in libvirt's capabilities, no
/dev/kvm, or QEMU's user cannot open it) is the verdict without booting anything: libvirt can
take a minute to refuse a ``kvm`` domain on a loaded host. Only a "may" is proven by the guest.

``accel = kvm`` that does not work raises :class:`AcceleratorUnavailableError` (exit 12) at once
instead of hanging; ``accel = tcg`` skips the probe.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stagingvm.errors import AcceleratorUnavailableError, InvalidInputError
from stagingvm.progress import NULL_PROGRESS, Progress
from stagingvm.settings import Settings
from stagingvm.virt.accel.accelprobe import MARKER, PAYLOAD, STAGES
from stagingvm.virt.accel.refusal import quick_refusal
from stagingvm.virt.xmlrender import load_template, set_attrs, set_text, to_xml

if TYPE_CHECKING:
    import libvirt

ACCEL_MODES = ("auto", "kvm", "tcg")
PROBE_TIMEOUT = 6.0
"""Seconds the probe guest gets. Working KVM needs well under one; TCG-speed KVM never makes it."""
BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")


@dataclass(frozen=True)
class AccelDecision:
    """How guests are run, and why. ``timeout_factor`` multiplies every wait's time-out."""

    domain_type: str  # "kvm" | "qemu"
    reason: str
    warning: str | None
    timeout_factor: float

    def scale(self, seconds: float) -> float:
        return seconds * self.timeout_factor

    def to_json(self) -> dict[str, Any]:
        return {
            "domain_type": self.domain_type,
            "reason": self.reason,
            "warning": self.warning,
            "timeout_factor": self.timeout_factor,
        }


@dataclass(frozen=True)
class ProbeResult:
    """What the probe guest showed: ``works`` only if it printed the marker in time."""

    works: bool
    detail: str
    elapsed: float


def accel_dir(settings: Settings) -> Path:
    return settings.data_dir / "accel"


def _boot_id() -> str:
    try:
        return BOOT_ID_PATH.read_text(encoding="ascii").strip()
    except OSError:
        return "unknown"


def _cache_path(settings: Settings) -> Path:
    return accel_dir(settings) / "kvm-verdict.json"


def load_cached_verdict(settings: Settings) -> ProbeResult | None:
    """The verdict of an earlier probe on this host boot and URI, if there is one."""
    try:
        data = json.loads(_cache_path(settings).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    if data.get("boot_id") != _boot_id() or data.get("uri") != settings.uri:
        return None
    works, detail = data.get("works"), data.get("detail")
    if not isinstance(works, bool) or not isinstance(detail, str):
        return None
    return ProbeResult(works=works, detail=detail, elapsed=float(data.get("elapsed", 0.0)))


def store_verdict(settings: Settings, result: ProbeResult) -> None:
    """Write the verdict atomically (parallel runs may probe at the same time)."""
    path = _cache_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "boot_id": _boot_id(),
        "uri": settings.uri,
        "works": result.works,
        "detail": result.detail,
        "elapsed": round(result.elapsed, 3),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def probe_xml(domain_type: str, name: str, payload: Path, console_log: Path) -> str:
    root = load_template("accel-probe")
    set_attrs(root, ".", type=domain_type)
    set_text(root, "name", name)
    set_text(root, "os/kernel", str(payload))
    set_attrs(root, "devices/serial/log", file=str(console_log))
    return to_xml(root)


def _stages_seen(output: bytes) -> str:
    """How far the probe got, for the warning: firmware, then the payload's stage letters.

    SeaBIOS prints "Booting from ROM.." right before it jumps to the payload, which then
    prints its letters directly after the dots (firmware text is full of capitals itself).
    """
    seen = ["firmware"] if b"SeaBIOS" in output else []
    _, found, after = output.partition(b"Booting from ROM")
    letters = after.lstrip(b".") if found else b""
    for letter, desc in STAGES.items():
        if not letters.startswith(letter.encode()):
            break
        seen.append(desc)
        letters = letters[1:]
    return ", ".join(seen) if seen else "nothing"


def probe_domain_type(
    conn: libvirt.virConnect, domain_type: str, work_dir: Path, *, timeout: float = PROBE_TIMEOUT
) -> ProbeResult:
    """Boot the probe payload in a transient *domain_type* domain; report whether it finished.

    The domain is always destroyed before returning. ``work_dir`` must be readable by QEMU
    (the payload is given to it as a kernel), so it is made mode 0755.
    """
    import libvirt

    work_dir.mkdir(parents=True, exist_ok=True)
    work_dir.chmod(0o755)
    token = uuid.uuid4().hex[:8]
    payload = work_dir / "probe.bin"
    if not payload.is_file() or payload.read_bytes() != PAYLOAD:
        tmp = work_dir / f".probe.bin.{token}"
        tmp.write_bytes(PAYLOAD)
        tmp.chmod(0o644)
        tmp.replace(payload)
    log = work_dir / f"probe-{token}.log"
    name = f"stagingvm-accel-probe-{token}"
    started = time.monotonic()
    try:
        dom = conn.createXML(probe_xml(domain_type, name, payload, log), 0)
    except libvirt.libvirtError as exc:
        return ProbeResult(
            False, f"libvirt refused a '{domain_type}' guest: {exc}", time.monotonic() - started
        )
    output = b""
    try:
        while True:
            elapsed = time.monotonic() - started
            with contextlib.suppress(OSError):
                output = log.read_bytes()
            if MARKER in output:
                return ProbeResult(True, f"probe guest finished in {elapsed:.1f} s", elapsed)
            try:
                state = dom.state()[0]
            except libvirt.libvirtError:
                state = libvirt.VIR_DOMAIN_SHUTOFF
            if state in (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_CRASHED):
                return ProbeResult(
                    False,
                    f"the probe guest stopped after {elapsed:.1f} s (saw: {_stages_seen(output)})",
                    elapsed,
                )
            if elapsed >= timeout:
                what = (
                    "no output"
                    if not output
                    else f"it got as far as: {_stages_seen(output)}, then nothing"
                )
                return ProbeResult(
                    False,
                    f"the probe guest did not finish in {timeout:g} s ({what}); "
                    "KVM is there but does not run guest code at usable speed "
                    "(nested virtualisation?)",
                    elapsed,
                )
            time.sleep(0.05)
    finally:
        with contextlib.suppress(libvirt.libvirtError):
            dom.destroy()
        with contextlib.suppress(OSError):
            log.unlink()


def resolve_accel(
    settings: Settings,
    conn: libvirt.virConnect,
    *,
    progress: Progress = NULL_PROGRESS,
    probe_timeout: float = PROBE_TIMEOUT,
    refusal: Callable[[libvirt.virConnect], str | None] = quick_refusal,
) -> AccelDecision:
    """Decide the domain type for *settings.accel* (``auto`` | ``kvm`` | ``tcg``).

    A refusal the host shows at once (``refusal.quick_refusal``: no 'kvm' in libvirt's
    capabilities, no /dev/kvm, QEMU's user cannot open it) is the verdict without a probe
    guest; *refusal* is that check (tests of the probe path pass one that never refuses).

    The caller shows ``decision.warning`` (the Manager passes it to ``progress.note``).
    """
    mode = settings.accel
    if mode not in ACCEL_MODES:
        raise InvalidInputError(
            f"invalid accelerator {mode!r}", hint="use one of: " + ", ".join(ACCEL_MODES)
        )
    tcg_factor = settings.timeouts.tcg_factor
    if mode == "tcg":
        return AccelDecision("qemu", "software emulation (TCG) was asked for", None, tcg_factor)

    verdict = load_cached_verdict(settings)
    cached = verdict is not None
    if verdict is None:
        with progress.phase("checking that KVM really runs guests"):
            started = time.monotonic()
            refused = refusal(conn)
            if refused is not None:
                verdict = ProbeResult(False, refused, time.monotonic() - started)
            else:
                verdict = probe_domain_type(conn, "kvm", accel_dir(settings), timeout=probe_timeout)
        store_verdict(settings, verdict)
    when = " (verdict cached for this host boot)" if cached else ""

    if verdict.works:
        return AccelDecision("kvm", f"KVM works: {verdict.detail}{when}", None, 1.0)
    if mode == "kvm":
        raise AcceleratorUnavailableError(
            f"KVM was asked for but does not work on this host: {verdict.detail}{when}",
            hint="use --accel tcg (software emulation, several times slower) or --accel auto; "
            f"after fixing KVM, delete {_cache_path(settings)} to probe again",
        )
    warning = (
        f"KVM is not usable: {verdict.detail}{when}. Falling back to software emulation (TCG): "
        f"guests run several times slower, time-outs are multiplied by {tcg_factor:g}."
    )
    return AccelDecision("qemu", f"KVM probe failed: {verdict.detail}{when}", warning, tcg_factor)
