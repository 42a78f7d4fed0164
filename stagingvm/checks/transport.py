"""How the checks reach the guest: anything with ``run(argv, *, timeout, stdin)``.

The normal path is ``stagingvm.ssh.client.GuestSSH`` (one paramiko connection, concurrent
``run`` calls on separate channels). ``SubprocessSSH`` does the same with one OpenSSH
process per command; the benchmark compares the two, and it serves where paramiko cannot.
Both verify host keys against a pinned known_hosts file; neither sends stdin.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from stagingvm.checks.model import Evidence


class Shell(Protocol):
    def run(self, argv: Sequence[str], *, timeout: float, stdin: bytes | None = None) -> object:
        """Return an object with ``exit_status``, ``stdout``, ``stderr`` (bytes)."""
        ...


def run_evidence(shell: Shell, argv: Sequence[str], timeout: float) -> Evidence:
    """Run *argv* and turn whatever happens (result, time-out, failure) into Evidence."""
    start = time.monotonic()
    try:
        result = shell.run(argv, timeout=timeout, stdin=None)
    except Exception as exc:  # the transport's own errors: judged as "could not run"
        elapsed = time.monotonic() - start
        timed_out = "time" in type(exc).__name__.lower() or "timed out" in str(exc).lower()
        return Evidence(
            None,
            "",
            "",
            elapsed,
            timed_out=timed_out,
            transport_error=f"{type(exc).__name__}: {exc}",
        )
    status = getattr(result, "exit_status", None)
    return Evidence(
        exit_status=status if isinstance(status, int) else None,
        stdout=_text(getattr(result, "stdout", b"")),
        stderr=_text(getattr(result, "stderr", b"")),
        duration=time.monotonic() - start,
        timed_out=bool(getattr(result, "timed_out", False)),
    )


def _text(data: object) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return str(data)


@dataclass
class SubprocessResult:
    exit_status: int | None
    stdout: bytes
    stderr: bytes
    duration: float
    timed_out: bool = False


@dataclass
class SubprocessSSH:
    """One ``ssh`` process per command; host keys checked against *known_hosts*."""

    host: str
    user: str
    key_path: Path
    known_hosts: Path
    port: int = 22
    prefix: tuple[str, ...] = ()  # e.g. ("ip", "netns", "exec", "stagingvm-lab")

    def argv(self, remote: Sequence[str]) -> list[str]:
        return [
            *self.prefix,
            "ssh",
            "-F",
            "/dev/null",
            "-i",
            str(self.key_path),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "LogLevel=ERROR",
            "-p",
            str(self.port),
            f"{self.user}@{self.host}",
            "--",
            shlex.join(remote),
        ]

    def run(
        self, argv: Sequence[str], *, timeout: float, stdin: bytes | None = None
    ) -> SubprocessResult:
        start = time.monotonic()
        try:
            proc = subprocess.run(
                self.argv(argv),
                input=stdin,
                stdin=None if stdin else subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            return SubprocessResult(
                None, exc.stdout or b"", exc.stderr or b"", time.monotonic() - start, timed_out=True
            )
        return SubprocessResult(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)
