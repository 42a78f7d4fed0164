"""A second libvirt "host" for the remote e2e test: a network namespace of its own with its
own libvirtd, virtlogd and sshd, reached from the lab namespace over a veth pair.

Debian 12's libvirt 9.0 has no modular daemons (no virtqemud), and a second system libvirtd
would share /run/libvirt, /var/lib/libvirt and /etc/libvirt with the lab's (its domain and
network status files, sockets and pid files). So the second one runs in a mount namespace
too, where those three are fresh (tmpfs, and a copy of /etc/libvirt's *.conf files without
any domain or network definitions); virtlogd and libvirtd get pid files there; sshd (with
keys made for the test) runs in the same namespaces, so ``qemu+ssh://root@ADDR/system``
reaches this libvirtd. All traffic stays on the veth pair between the two namespaces.

Everything is torn down by :meth:`RemoteHost.stop`: the domains, networks and pools of the
second libvirtd (through its socket, seen from here under ``/proc/PID/root``), then its
daemons by pid, then the namespace (which takes the veth pair with it).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from stagingvm.ssh.keys import ensure_client_key

SSH = shutil.which("ssh") or "/usr/bin/ssh"
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"

# Run inside the new mount namespace: fresh libvirt state, then the daemons, then sshd.
START_SCRIPT = """set -e
mount -t tmpfs tmpfs /run/libvirt
mount -t tmpfs tmpfs /var/lib/libvirt
mount -t tmpfs tmpfs /var/cache/libvirt
mount --bind "$1" /etc/libvirt
mkdir -p /var/lib/libvirt/images /var/lib/libvirt/qemu /var/lib/libvirt/dnsmasq /run/sshd
virtlogd -d -p /run/libvirt/h2-virtlogd.pid
libvirtd -d --pid-file /run/libvirt/h2-libvirtd.pid
exec "$2" -D -e -f "$3"
"""


@dataclass
class RemoteHost:
    """The second host: where it listens, and how to reach its libvirtd and sshd."""

    namespace: str
    address: str
    directory: Path
    process: subprocess.Popen[bytes] | None = None  # sshd (which the namespaces run in)
    daemons: tuple[int, ...] = ()  # libvirtd, virtlogd: they outlive a taken-down sshd

    @property
    def client_key(self) -> Path:
        return self.directory / "client" / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        """An OpenSSH known_hosts that vouches for the host's key (made for the test)."""
        return self.directory / "known_hosts"

    @property
    def ssh_wrapper(self) -> Path:
        return self.directory / "ssh"

    @property
    def uri(self) -> str:
        """``qemu+ssh://`` through OpenSSH (the wrapper pins the host's key, batch mode)."""
        return f"qemu+ssh://root@{self.address}/system?command={self.ssh_wrapper}&keyfile={self.client_key}"

    @property
    def local_uri(self) -> str:
        """Its libvirtd's own socket, from this side (for the tear-down only)."""
        socket = f"/proc/{self.daemons[0]}/root/run/libvirt/libvirt-sock"
        return f"qemu+unix:///system?socket={socket}"

    def _root(self) -> Path:
        assert self.process is not None
        return Path(f"/proc/{self.process.pid}/root")

    def start(self) -> None:
        d = self.directory
        etc = d / "etc"
        etc.mkdir(parents=True)
        for conf in Path("/etc/libvirt").glob("*.conf"):
            shutil.copy(conf, etc / conf.name)
        if Path("/etc/libvirt/nwfilter").is_dir():
            shutil.copytree("/etc/libvirt/nwfilter", etc / "nwfilter")
        host_key = d / "host_key"
        subprocess.run(
            [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "h2", "-f", str(host_key)],
            check=True,
        )
        (d / "authorized_keys").write_text(ensure_client_key(self.client_key) + "\n")
        kind, blob = (d / "host_key.pub").read_text().split()[:2]
        self.known_hosts.write_text(f"{self.address} {kind} {blob}\n")
        config = d / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"ListenAddress {self.address}",
                    "Port 22",
                    f"HostKey {host_key}",
                    f"AuthorizedKeysFile {d / 'authorized_keys'}",
                    "PidFile none",
                    "StrictModes no",
                    "UsePAM no",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "AllowTcpForwarding yes",
                    "",
                ]
            )
        )
        options = [
            f"UserKnownHostsFile={self.known_hosts}",
            "GlobalKnownHostsFile=/dev/null",
            "StrictHostKeyChecking=yes",
            "BatchMode=yes",
            "IdentitiesOnly=yes",
        ]
        argv = [SSH, *(arg for option in options for arg in ("-o", option))]
        self.ssh_wrapper.write_text(f'#!/bin/sh\nexec {shlex.join(argv)} "$@"\n')
        self.ssh_wrapper.chmod(0o755)
        log = (d / "daemons.log").open("ab")
        self.process = subprocess.Popen(
            [
                "ip", "netns", "exec", self.namespace,
                "unshare", "--mount", "--propagation", "private",
                "sh", "-c", START_SCRIPT, "sh", str(etc), SSHD, str(config),
            ],
            stdout=log,
            stderr=log,
        )  # fmt: skip
        log.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        sock = self._root() / "run/libvirt/libvirt-sock"
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"second host died: {(self.directory / 'daemons.log').read_text()}"
                )
            if sock.exists() and self.answers():
                run = self._root() / "run/libvirt"
                self.daemons = tuple(
                    int((run / f"h2-{daemon}.pid").read_text())
                    for daemon in ("libvirtd", "virtlogd")
                )
                return
            time.sleep(0.2)
        raise RuntimeError(f"second host not up: {(self.directory / 'daemons.log').read_text()}")

    def answers(self) -> bool:
        try:
            with socket.create_connection((self.address, 22), timeout=1):
                return True
        except OSError:
            return False

    def take_down(self) -> None:
        """Stop its sshd: the host is gone for the runner (libvirtd keeps its state)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def stop(self) -> list[str]:
        """Tear everything down; returns what could not be removed."""
        import libvirt

        failures: list[str] = []
        if self.daemons:
            try:
                conn = libvirt.open(self.local_uri)
            except libvirt.libvirtError as exc:
                failures.append(f"second libvirtd: {exc}")
            else:
                for dom in conn.listAllDomains(0):
                    with contextlib.suppress(libvirt.libvirtError):
                        if dom.isActive():
                            dom.destroy()
                    try:
                        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
                    except libvirt.libvirtError as exc:
                        failures.append(f"domain {dom.name()}: {exc}")
                for net in conn.listAllNetworks(0):
                    with contextlib.suppress(libvirt.libvirtError):
                        if net.isActive():
                            net.destroy()
                        net.undefine()
                for pool in conn.listAllStoragePools(0):
                    with contextlib.suppress(libvirt.libvirtError):
                        for vol in pool.listAllVolumes(0):
                            vol.delete(0)
                        if pool.isActive():
                            pool.destroy()
                        pool.undefine()
                conn.close()
            for pid in self.daemons:
                _kill(pid, failures)
        self.take_down()
        subprocess.run(["ip", "netns", "del", self.namespace], check=False)
        return failures


def _kill(pid: int, failures: list[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return
        if state == "Z":  # exited; its parent (not us) reaps it
            return
        time.sleep(0.1)
    failures.append(f"pid {pid} still running")


def forget_logs(name: str) -> None:
    """The logs the second host's libvirtd and virtlogd left for VM *name* (this machine's
    /var/log/libvirt is not replaced in its mount namespace); kept with STAGINGVM_E2E_KEEP=1."""
    if os.environ.get("STAGINGVM_E2E_KEEP") == "1":
        return
    for log in (f"{name}.log", f"stagingvm-{name}.console.log"):
        with contextlib.suppress(FileNotFoundError):
            (Path("/var/log/libvirt/qemu") / log).unlink()


def make_remote_host(directory: Path, pid: int) -> RemoteHost:
    """Namespace and veth pair (lab side here, where the test runs); not started yet."""
    namespace = f"stagingvm-h2-{pid}"
    octet = pid % 250 + 1
    here, there = f"10.215.{octet}.1", f"10.215.{octet}.2"
    ours, theirs = f"h2a{pid}"[:15], f"h2b{pid}"[:15]
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        subprocess.run(
            ["ip", "link", "add", ours, "type", "veth", "peer", "name", theirs], check=True
        )
        subprocess.run(["ip", "link", "set", theirs, "netns", namespace], check=True)
        subprocess.run(["ip", "addr", "add", f"{here}/30", "dev", ours], check=True)
        subprocess.run(["ip", "link", "set", ours, "up"], check=True)
        inside = ["ip", "netns", "exec", namespace, "ip"]
        subprocess.run([*inside, "addr", "add", f"{there}/30", "dev", theirs], check=True)
        subprocess.run([*inside, "link", "set", theirs, "up"], check=True)
        subprocess.run([*inside, "link", "set", "lo", "up"], check=True)
    except BaseException:
        subprocess.run(["ip", "netns", "del", namespace], check=False)
        raise
    return RemoteHost(namespace, there, directory)
