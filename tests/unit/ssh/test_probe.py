"""read_banner: a real sshd answers, everything else is None."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from stagingvm.ssh.probe import read_banner
from tests.unit.ssh.sshd_server import SSHDaemon, free_port


@contextmanager
def fake_server(payload: bytes | None) -> Iterator[int]:
    """A TCP server on 127.0.0.1 that sends *payload* (None: nothing) to each client."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                if payload is not None:
                    conn.sendall(payload)
                stop.wait(3.0)  # keep the connection open: the probe must not wait for EOF

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        listener.close()


def test_banner_of_a_real_sshd(sshd: SSHDaemon) -> None:
    banner = read_banner(sshd.host, sshd.port, timeout=5.0)
    assert banner is not None
    assert banner.startswith("SSH-2.0-OpenSSH_")
    assert "\r" not in banner and "\n" not in banner


def test_closed_port() -> None:
    assert read_banner("127.0.0.1", free_port(), timeout=1.0) is None


def test_garbage() -> None:
    with fake_server(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n") as port:
        assert read_banner("127.0.0.1", port, timeout=1.0) is None


def test_binary_garbage_without_newline() -> None:
    with fake_server(bytes(range(256)) * 4) as port:
        assert read_banner("127.0.0.1", port, timeout=1.0) is None


def test_silent_server_times_out() -> None:
    with fake_server(None) as port:
        assert read_banner("127.0.0.1", port, timeout=0.5) is None


def test_lines_before_the_identification_are_skipped() -> None:
    with fake_server(b"welcome\r\nplease wait\r\nSSH-2.0-dropbear_2022.83\r\n") as port:
        assert read_banner("127.0.0.1", port, timeout=1.0) == "SSH-2.0-dropbear_2022.83"


def test_identification_split_over_packets() -> None:
    # The whole line arrives only once the payload is complete; a partial line is not enough.
    with fake_server(b"SSH-2.0-Open") as port:
        assert read_banner("127.0.0.1", port, timeout=0.5) is None


def test_wrong_protocol_version_and_overlong_line() -> None:
    with fake_server(b"SSH-1.5-ancient\r\n") as port:
        assert read_banner("127.0.0.1", port, timeout=1.0) is None
    with fake_server(b"SSH-2.0-" + b"x" * 300 + b"\r\n") as port:
        assert read_banner("127.0.0.1", port, timeout=1.0) is None


def test_open_banner_keeps_a_connection_an_ssh_login_can_use(sshd: SSHDaemon) -> None:
    """The socket that saw the banner replays it: GuestSSH logs in over it, no new connection."""
    from stagingvm.ssh.client import GuestSSH
    from stagingvm.ssh.probe import ReplaySocket, open_banner

    found = open_banner(sshd.host, sshd.port, timeout=5.0)
    assert found is not None
    banner, sock = found
    assert banner.startswith("SSH-2.0-OpenSSH_") and isinstance(sock, ReplaySocket)
    peer = sock.getpeername()
    with GuestSSH.connect(
        sshd.host,
        port=sshd.port,
        user=sshd.user,
        key_path=sshd.client_key,
        known_hosts=sshd.directory / "known_hosts",
        record_first_key=True,
        sock=sock,
    ) as ssh:
        assert ssh.server_version == banner
        assert ssh._transport().getpeername() == peer  # the very same connection
        assert ssh.run(["echo", "over the banner connection"], timeout=10).stdout == (
            b"over the banner connection\n"
        )


def test_replay_socket_gives_back_what_was_read_first() -> None:
    from stagingvm.ssh.probe import ReplaySocket

    left, right = socket.socketpair()
    with left, right:
        right.sendall(b"later")
        replay = ReplaySocket(left, b"SSH-2.0-x\r\nKEX")
        assert replay.recv(4) == b"SSH-"
        assert replay.recv(100) == b"2.0-x\r\nKEX"
        assert replay.recv(100) == b"later"
        replay.close()


def test_open_banner_closes_what_is_no_ssh_server() -> None:
    from stagingvm.ssh.probe import open_banner

    with fake_server(b"HTTP/1.1 400 Bad Request\r\n\r\n") as port:
        assert open_banner("127.0.0.1", port, timeout=1.0) is None
    assert open_banner("127.0.0.1", free_port(), timeout=1.0) is None
