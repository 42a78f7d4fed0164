"""Run GuestSSH.interactive in a process of its own (a test's child on a pty or pipes).

Usage: python interactive_driver.py JSON. JSON gives host, port, user, key, known_hosts,
argv (or null for a shell), optional winsize [rows, cols] to set on stdin first, and
report: a file where the terminal modes before/after are written. Exits with the remote status.
"""

from __future__ import annotations

import fcntl
import json
import os
import struct
import sys
import termios
from pathlib import Path

from stagingvm.ssh.client import GuestSSH


def main() -> int:
    spec = json.loads(sys.argv[1])
    if spec.get("winsize"):
        rows, cols = spec["winsize"]
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    before = termios.tcgetattr(0) if os.isatty(0) else None
    with GuestSSH.connect(
        spec["host"],
        port=spec["port"],
        user=spec["user"],
        key_path=Path(spec["key"]),
        known_hosts=Path(spec["known_hosts"]),
    ) as ssh:
        status = ssh.interactive(spec["argv"])
    after = termios.tcgetattr(0) if os.isatty(0) else None
    Path(spec["report"]).write_text(json.dumps({"restored": before == after, "status": status}))
    return status


if __name__ == "__main__":
    sys.exit(main())
