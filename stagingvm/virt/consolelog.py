"""The tail of a guest's serial console log, cleaned up for people.

virtlogd writes everything the guest prints to ``<data_dir>/vms/NAME/console.log``: boot
messages with colour codes, carriage-return progress lines, partial UTF-8. When a wait fails,
the last lines are the best clue; this reads only the end of the file and makes it readable.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# CSI sequences (colours, cursor moves), OSC sequences (titles) and lone two-byte escapes.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_line(line: str) -> str:
    """One line as a terminal would show it: escapes gone, only the text after the last CR."""
    line = _ANSI.sub("", line)
    line = line.rstrip("\r")
    if "\r" in line:
        line = line.rsplit("\r", 1)[1]
    return _CONTROL.sub("", line).rstrip()


def tail(path: Path, lines: int = 30, *, max_bytes: int = 256 * 1024) -> list[str]:
    """The last *lines* non-empty lines of *path* ([] if it does not exist or is unreadable)."""
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            start = max(0, size - max_bytes)
            fh.seek(start)
            data = fh.read()
    except OSError:
        return []
    text = data.decode("utf-8", errors="replace")
    raw = text.split("\n")
    if start > 0:
        raw = raw[1:]  # the first line was cut in the middle
    cleaned = [clean_line(line) for line in raw]
    return [line for line in cleaned if line][-lines:] if lines > 0 else []
