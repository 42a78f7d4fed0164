"""The one place stagingvm opens libvirt connections.

``connect(uri)`` keeps one connection per URI per process: a libvirt connection is thread safe
and expensive to open, and libvirt's ``test:///FILE.xml`` driver gives every *open* a fresh
copy of its state, so every part of one run must share one connection to see the same world.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from stagingvm.errors import LibvirtUnavailableError, StagingVMError

if TYPE_CHECKING:
    import libvirt

T = TypeVar("T")

_lock = threading.Lock()
_connections: dict[str, libvirt.virConnect] = {}
_handler_registered = False

START_HINT = "start libvirtd: `libvirtd --daemon` (or `systemctl start libvirtd`)"
PERMISSION_HINT = (
    "you may not use this libvirt URI: run as root, or add your user to the `libvirt` group "
    "(then log in again)"
)


def _quiet(_ctx: Any, _err: Any) -> None:
    """libvirt's default handler prints every error to stderr; we raise them instead."""
    return None


def _register_quiet_handler() -> None:
    global _handler_registered
    if not _handler_registered:
        import libvirt

        libvirt.registerErrorHandler(_quiet, None)
        _handler_registered = True


def connect(uri: str) -> libvirt.virConnect:
    """The open connection to *uri*, opened on first use and reused after.

    Raises LibvirtUnavailableError (with a hint on how to fix it) when libvirtd cannot be reached.
    """
    import libvirt

    with _lock:
        _register_quiet_handler()
        conn = _connections.get(uri)
        if conn is not None:
            try:
                if conn.isAlive():
                    return conn
            except libvirt.libvirtError:
                pass
            _connections.pop(uri, None)
        _check_test_driver_file(uri)
        try:
            conn = libvirt.open(uri)
        except libvirt.libvirtError as exc:
            raise unavailable(uri, exc) from exc
        _connections[uri] = conn
        return conn


def is_remote(uri: str) -> bool:
    """Does *uri* name a libvirtd on another machine (``qemu+ssh://host/system``)? A URI
    with no host, or the ``unix`` transport, is this machine's."""
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    return bool(parts.hostname) and parts.scheme.partition("+")[2] != "unix"


def _check_test_driver_file(uri: str) -> None:
    """``test:///FILE.xml`` naming no file: say so, before libxml2 prints its own warning."""
    if not uri.startswith("test:///") or uri == "test:///default":
        return
    path = Path(uri.removeprefix("test://").split("?", 1)[0])
    if not path.is_file():
        raise LibvirtUnavailableError(
            f"cannot connect to libvirt at {uri}: the test driver file {path} does not exist",
            hint="name an existing libvirt test driver XML file, or use test:///default",
        )


def unavailable(uri: str, exc: Exception) -> LibvirtUnavailableError:
    """Turn a failed open into LibvirtUnavailableError with the hint that fits the cause."""
    text = str(exc)
    lowered = text.lower()
    if "permission denied" in lowered or "authentication" in lowered or "not authorized" in lowered:
        hint = PERMISSION_HINT
    else:
        hint = START_HINT
    return LibvirtUnavailableError(f"cannot connect to libvirt at {uri}: {text}", hint=hint)


def forget(uri: str | None = None) -> None:
    """Close and drop the cached connection to *uri* (all of them when None).

    For long-lived processes and tests: the next ``connect`` opens a fresh connection.
    """
    with _lock:
        uris = list(_connections) if uri is None else [uri]
        for key in uris:
            conn = _connections.pop(key, None)
            if conn is not None:
                with contextlib.suppress(Exception):  # a dead connection may fail to close
                    conn.close()


def lookup_or_none(lookup: Callable[[str], T], name: str, missing: str) -> T | None:
    """``lookup(name)``, or None when libvirt says the object does not exist.

    *missing* names the libvirt error code of "no such object" (``"VIR_ERR_NO_DOMAIN"``);
    every other error is raised.
    """
    import libvirt

    try:
        return lookup(name)
    except libvirt.libvirtError as exc:
        if error_code(exc) == getattr(libvirt, missing):
            return None
        raise


def error_code(exc: BaseException) -> int | None:
    """libvirt's error code of *exc* (``VIR_ERR_*``), or None for other exceptions."""
    get = getattr(exc, "get_error_code", None)
    if get is None:
        return None
    code = get()
    return int(code) if code is not None else None


_CONNECTION_CODES = ("VIR_ERR_NO_CONNECT", "VIR_ERR_INVALID_CONN", "VIR_ERR_RPC")
_PERMISSION_CODES = ("VIR_ERR_AUTH_FAILED", "VIR_ERR_ACCESS_DENIED", "VIR_ERR_OPERATION_DENIED")


def translate(exc: BaseException, uri: str) -> StagingVMError | None:
    """The stagingvm error for a libvirt error that escaped the code (None: not libvirt's).

    A lost or refused connection becomes LibvirtUnavailableError; anything else keeps
    libvirt's message in a plain StagingVMError (exit code 1: stagingvm did not expect it).
    """
    import libvirt

    if not isinstance(exc, libvirt.libvirtError):
        return None
    code = error_code(exc)
    codes = {name: getattr(libvirt, name, None) for name in _CONNECTION_CODES + _PERMISSION_CODES}
    domain = exc.get_error_domain()
    if code in {codes[n] for n in _PERMISSION_CODES}:
        return LibvirtUnavailableError(f"libvirt refused: {exc}", hint=PERMISSION_HINT)
    if code in {codes[n] for n in _CONNECTION_CODES} or domain == libvirt.VIR_FROM_RPC:
        return LibvirtUnavailableError(
            f"lost the connection to libvirt at {uri}: {exc}", hint=START_HINT
        )
    return StagingVMError(f"libvirt: {exc}")
