"""A Python child process on a pty, driven as a user's terminal would drive it (console, ssh).

The child runs ``python -c CODE ARGS`` with the checkout on PYTHONPATH; its driver prints a
JSON report after a ``\\0eof\\0`` marker, which ``finish`` waits for.
"""

from __future__ import annotations

import os
import pty
import select
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EOF_MARK = b"\x00eof\x00"


class PtyChild:
    def __init__(self, code: str, *args: str, limit: float = 120.0, term: str | None = None):
        pid, fd = pty.fork()
        if pid == 0:
            env = dict(os.environ, PYTHONPATH=str(REPO))
            if term is not None:
                env["TERM"] = term
            os.execve(sys.executable, [sys.executable, "-c", code, *args], env)
        self.pid, self.fd, self.output, self.limit = pid, fd, b"", limit

    def read_until(self, needle: bytes, limit: float | None = None) -> bool:
        """Read until *needle* was seen (True) or the child closed the pty (False)."""
        deadline = time.monotonic() + (self.limit if limit is None else limit)
        while needle not in self.output:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                os.kill(self.pid, 9)
                raise AssertionError(f"{needle!r} not seen in {self.output[-600:]!r}")
            readable, _, _ = select.select([self.fd], [], [], remaining)
            if readable:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    return False
                self.output += chunk
        return True

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    def wait(self) -> int:
        """Read to the driver's end marker, reap the child; its exit code."""
        self.read_until(EOF_MARK)
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)
