"""The interactive serial console of a VM (the ``console NAME`` verb), over a libvirt stream.

``virDomainOpenConsole`` hands us the guest's console as a libvirt stream, which works the
same for a local and a remote libvirtd and needs no access to the pty device itself. The
stream is non-blocking and driven by libvirt's default event loop, which runs in a daemon
thread of its own: both directions (keyboard to guest, guest to screen) are callbacks of that
loop, so the stream is only ever touched from one thread.

The local terminal is raw while attached (Ctrl-C goes to the guest); ``Ctrl+]`` (0x1d, as in
virsh) leaves. The terminal is restored however the session ends: escape key, guest shut
down, end of stdin, or an error. ``VIR_DOMAIN_CONSOLE_FORCE`` takes the console over from a
session that was left behind (e.g. a killed terminal), as ``virsh console --force`` does.

The captured console *log* (``console --log``) is read by ``stagingvm.virt.consolelog``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stagingvm.errors import GuestFailedError, LibvirtUnavailableError, NotFoundError
from stagingvm.terminal import raw_terminal, write_all

if TYPE_CHECKING:
    import libvirt

ESCAPE = b"\x1d"  # Ctrl+]
ESCAPE_NAME = "Ctrl+]"
_CHUNK = 4096

_loop_lock = threading.Lock()
_loop_started = False


def ensure_event_loop() -> None:
    """Register libvirt's default event loop and run it in a daemon thread (once per process).

    It must be registered *before* a connection is opened for that connection's streams to
    get events, which is why :func:`attach` opens a connection of its own.
    """
    global _loop_started
    import libvirt

    with _loop_lock:
        if _loop_started:
            return
        libvirt.virEventRegisterDefaultImpl()
        # The library must not print: libvirt's default handler writes every error to stderr
        # (e.g. when the console stream ends because the guest shut down). Errors still
        # raise libvirtError as usual.
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

        def run() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=run, name="stagingvm-libvirt-events", daemon=True).start()
        _loop_started = True


@dataclass
class _Session:
    """What the two callbacks share; they run on the event-loop thread only."""

    stream: Any
    in_fd: int
    out_fd: int
    escape: bytes
    pending: bytearray = field(default_factory=bytearray)
    reason: str = ""
    error: str = ""
    done: threading.Event = field(default_factory=threading.Event)

    def finish(self, reason: str, error: str = "") -> None:
        if not self.done.is_set():
            self.reason, self.error = reason, error
            self.done.set()


def attach(
    uri: str,
    name: str,
    *,
    stdin_fd: int | None = None,
    stdout_fd: int | None = None,
    escape: bytes = ESCAPE,
) -> str:
    """Bridge the local terminal to the serial console of domain *name* until the user
    leaves; returns why it ended: ``"escape"``, ``"closed"`` (the guest side went away) or
    ``"eof"`` (stdin ended, e.g. a pipe).

    The caller checks that *name* is a VM stagingvm owns (``Manager.status``) and tells the
    user how to leave (:data:`ESCAPE_NAME`) before calling this.
    """
    import libvirt

    in_fd = sys.stdin.fileno() if stdin_fd is None else stdin_fd
    out_fd = sys.stdout.fileno() if stdout_fd is None else stdout_fd
    ensure_event_loop()
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise LibvirtUnavailableError(
            f"cannot connect to libvirt at {uri}: {exc.get_error_message()}",
            hint="is libvirtd running? (e.g. `libvirtd --daemon` as root)",
        ) from None
    try:
        stream = _open_stream(conn, name)
        session = _Session(stream, in_fd, out_fd, escape)
        with raw_terminal(in_fd):
            _run(session)
        if session.error:
            raise GuestFailedError(
                f"console of {name} failed: {session.error}", phase="console", elapsed=0.0
            )
        return session.reason
    finally:
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()


def _open_stream(conn: libvirt.virConnect, name: str) -> libvirt.virStream:
    import libvirt

    try:
        dom = conn.lookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            raise NotFoundError(f"VM {name} does not exist") from None
        raise LibvirtUnavailableError(f"libvirt failed: {exc.get_error_message()}") from None
    if not dom.isActive():
        raise GuestFailedError(
            f"VM {name} is not running, so it has no live console",
            phase="console",
            elapsed=0.0,
            hint=f"start it (`pr-test-vm start {name}`) or read what it printed with "
            f"`pr-test-vm console {name} --log`",
        )
    stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
    try:
        dom.openConsole(None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
    except libvirt.libvirtError as exc:
        raise GuestFailedError(
            f"cannot open the console of {name}: {exc.get_error_message()}",
            phase="console",
            elapsed=0.0,
        ) from None
    return stream


def _run(session: _Session) -> None:
    import libvirt

    stream = session.stream
    stream_events = (
        libvirt.VIR_STREAM_EVENT_READABLE
        | libvirt.VIR_STREAM_EVENT_ERROR
        | libvirt.VIR_STREAM_EVENT_HANGUP
    )
    stream.eventAddCallback(stream_events, _on_stream, session)
    watch = libvirt.virEventAddHandle(
        session.in_fd, libvirt.VIR_EVENT_HANDLE_READABLE, _on_stdin, session
    )
    try:
        session.done.wait()
    finally:
        libvirt.virEventRemoveHandle(watch)
        for cleanup in (stream.eventRemoveCallback, stream.abort):
            with contextlib.suppress(libvirt.libvirtError):
                cleanup()


def _on_stdin(watch: int, fd: int, events: int, session: _Session) -> None:
    import libvirt

    if session.done.is_set():
        return
    try:
        data = os.read(fd, _CHUNK)
    except OSError:
        data = b""
    if not data:
        session.finish("eof")
        return
    head, found, _ = data.partition(session.escape)
    session.pending += head
    try:
        _flush(session)
    except libvirt.libvirtError as exc:
        session.finish("closed", exc.get_error_message())
        return
    if found:
        session.finish("escape")


def _flush(session: _Session) -> None:
    """Send what the user typed; a full stream (-2) keeps the rest for a WRITABLE event."""
    import libvirt

    while session.pending:
        sent = session.stream.send(bytes(session.pending))
        if sent == -2:
            break
        del session.pending[:sent]
    wanted = (
        libvirt.VIR_STREAM_EVENT_READABLE
        | libvirt.VIR_STREAM_EVENT_ERROR
        | libvirt.VIR_STREAM_EVENT_HANGUP
    )
    if session.pending:
        wanted |= libvirt.VIR_STREAM_EVENT_WRITABLE
    session.stream.eventUpdateCallback(wanted)


def _on_stream(stream: libvirt.virStream, events: int, session: _Session) -> None:
    import libvirt

    if session.done.is_set():
        return
    try:
        if events & libvirt.VIR_STREAM_EVENT_READABLE:
            while True:
                data = stream.recv(_CHUNK)
                if data == -2:  # nothing more for now
                    break
                if not data:  # end of stream: the guest's console went away
                    session.finish("closed")
                    return
                write_all(session.out_fd, data)
        if events & libvirt.VIR_STREAM_EVENT_WRITABLE:
            _flush(session)
        if events & (libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP):
            session.finish("closed")
    except libvirt.libvirtError:
        # The stream fails this way when the domain shuts down: that is a normal end.
        session.finish("closed")
    except OSError as exc:  # our stdout went away
        session.finish("closed", str(exc))
