"""Refusals that settle "does KVM work?" at once, before any probe guest is started.

libvirt can take a minute or more to refuse a ``kvm`` domain on a loaded host (it starts QEMU,
which then fails to open ``/dev/kvm``: "Could not access KVM kernel module: Permission
denied"), so the host is asked first: do libvirt's capabilities list a ``kvm`` domain type,
does ``/dev/kvm`` exist, and can the user QEMU runs as open it. Only where all of that looks
usable is a probe guest booted (``accel.probe_domain_type``), since KVM that looks usable may
still not run guest code (nested virtualisation).

The device checks apply only to a local ``qemu:///system`` or ``qemu:///session`` URI; a check
that cannot tell (an unknown QEMU user, an unreadable config) says nothing and the probe decides.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from stagingvm.virt.xmlrender import parse

if TYPE_CHECKING:
    import libvirt

KVM_DEVICE = Path("/dev/kvm")
QEMU_CONF = Path("/etc/libvirt/qemu.conf")
DEFAULT_QEMU_USERS = ("libvirt-qemu", "qemu")
"""libvirt's build-time default for the system daemon's QEMU user (Debian, then Fedora)."""
_USER_RE = re.compile(r'^\s*user\s*=\s*"([^"]*)"', re.MULTILINE)


@dataclass(frozen=True)
class HostView:
    """Where the checks look (tests point them at files of their own)."""

    kvm_device: Path = KVM_DEVICE
    qemu_conf: Path = QEMU_CONF


def quick_refusal(conn: libvirt.virConnect, view: HostView | None = None) -> str | None:
    """Why KVM cannot work here, if the host says so at once; None if it may work."""
    # The device first: it needs no daemon (libvirtd may take many seconds to answer
    # getCapabilities on a loaded host).
    refused = device_refusal(str(conn.getURI()), view)
    if refused is not None:
        return refused
    if not _caps_offer_kvm(str(conn.getCapabilities())):
        return "libvirt's capabilities offer no 'kvm' domain type on this host"
    return None


def device_refusal(uri: str, view: HostView | None = None) -> str | None:
    """Why QEMU of the local *uri* cannot open the KVM device, if its mode says so."""
    view = view or HostView()
    parts = urlsplit(uri)
    if parts.scheme != "qemu" or parts.netloc:
        return None  # a remote or non-QEMU driver: its devices are not ours to look at
    if not view.kvm_device.exists():
        return f"{view.kvm_device} does not exist (no KVM kernel module loaded?)"
    if parts.path == "/session":
        uid = os.getuid()
        return _denied(view.kvm_device, uid, [*os.getgroups(), os.getgid()], f"uid {uid}")
    user = _qemu_user(view.qemu_conf)
    if user is None:
        return None
    name, uid, gids = user
    return _denied(view.kvm_device, uid, gids, name)


def _caps_offer_kvm(caps_xml: str) -> bool:
    root = parse(caps_xml)
    return any(d.get("type") == "kvm" for d in root.iter("domain"))


def _qemu_user(conf: Path) -> tuple[str, int, list[int]] | None:
    """The system daemon's QEMU user: name, uid and every group it gets (initgroups)."""
    try:
        text = conf.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    configured = _USER_RE.findall(text)
    candidates = configured[-1:] if configured else list(DEFAULT_QEMU_USERS)
    for name in candidates:
        if name.startswith("+") and name[1:].isdigit():
            uid = int(name[1:])
            try:
                entry = pwd.getpwuid(uid)
            except KeyError:
                return (name, uid, []) if uid == 0 else None
        else:
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                continue
        gids = os.getgrouplist(entry.pw_name, entry.pw_gid)
        if not configured:  # libvirt's default group is the user's own name, when it exists
            with contextlib.suppress(KeyError):
                gids.append(grp.getgrnam(entry.pw_name).gr_gid)
        return entry.pw_name, entry.pw_uid, gids
    return None


def _denied(device: Path, uid: int, gids: list[int], who: str) -> str | None:
    """Why *who* cannot open *device* read-write, going by its mode; None if it may.

    Conservative: any group or other bit (an ACL's mask shows there) counts as "may".
    """
    if uid == 0:
        return None
    try:
        st = device.stat()
    except OSError as exc:
        return f"cannot look at {device}: {exc.strerror}"
    mode = st.st_mode
    rw = stat.S_IRUSR | stat.S_IWUSR
    if st.st_uid == uid and mode & rw == rw:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return None
    return (
        f"QEMU runs as {who}, which cannot open {device} "
        f"({stat.filemode(mode)} uid {st.st_uid} gid {st.st_gid}): Permission denied"
    )
