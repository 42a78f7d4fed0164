"""Reading the files a user or CI hands the tool: bounded, regular files only.

Every file stagingvm reads on someone's say-so (``--config``, ``STAGINGVM_CONFIG``,
``--policy``, ``GITHUB_EVENT_PATH``) goes through ``read_bounded``: it opens with
``O_NONBLOCK`` (a FIFO with no writer would otherwise block in ``open``), refuses anything
that ``fstat`` does not call a regular file (``/dev/zero``, a FIFO, a directory), and reads at
most *cap* + 1 bytes, so a huge file is a clean error instead of a MemoryError. Parsers get
``parse_toml``/``parse_json``, which turn a nesting bomb's RecursionError into bad input.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stagingvm.errors import InvalidInputError

CONFIG_CAP = 256 * 1024
POLICY_CAP = 256 * 1024
EVENT_CAP = 4 * 1024 * 1024
MAX_DEPTH = 64


def read_bounded(path: Path, cap: int, what: str) -> str:
    """The text of regular file *path* (UTF-8), at most *cap* bytes, else InvalidInputError."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        raise InvalidInputError(f"cannot read {what} {path}: {exc.strerror}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InvalidInputError(
                f"{what} {path} is not a regular file", hint="pass a path to a plain file"
            )
        chunks: list[bytes] = []
        left = cap + 1
        while left > 0:
            chunk = os.read(fd, min(left, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise InvalidInputError(f"cannot read {what} {path}: {exc.strerror}") from exc
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > cap:
        raise InvalidInputError(f"{what} {path} is larger than {cap} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"cannot read {what} {path}: not UTF-8 text ({exc.reason})"
        ) from exc


def depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deeply *value* nests (iteratively: a deep value must not overflow the stack)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def _check_depth(value: Any, what: str) -> None:
    if depth(value) > MAX_DEPTH:
        raise InvalidInputError(f"{what} nests deeper than {MAX_DEPTH} levels")


def _parse(loads: Callable[[str], Any], text: str, what: str) -> Any:
    try:
        data = loads(text)
    except RecursionError as exc:
        raise InvalidInputError(f"{what} nests too deeply to parse") from exc
    _check_depth(data, what)
    return data


def parse_toml(text: str, what: str) -> dict[str, Any]:
    """``tomllib.loads`` with a nesting limit; TOMLDecodeError is left to the caller."""
    import tomllib  # only where there is TOML to read: `list` without a config file has none

    data: dict[str, Any] = _parse(tomllib.loads, text, what)
    return data


def parse_json(text: str, what: str) -> Any:
    """``json.loads`` with a nesting limit; ValueError is left to the caller."""
    return _parse(json.loads, text, what)


def check_output_path(path: Path, what: str) -> None:
    """Fail early for a report path that cannot be written (before any work starts).

    The parent directory must already exist and be writable (nothing is created), and *path*
    itself must not be a directory; an existing file must be writable.
    """
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise InvalidInputError(f"{what} path {path} is a directory")
    if not parent.is_dir():
        raise InvalidInputError(
            f"{what} path {path}: directory {parent} does not exist",
            hint="create the directory first; stagingvm creates none",
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InvalidInputError(f"{what} path {path}: directory {parent} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise InvalidInputError(f"{what} path {path} is not writable")
