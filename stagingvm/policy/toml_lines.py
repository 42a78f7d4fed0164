"""Map every key of a TOML document to the line it is written on.

``tomllib`` parses TOML but forgets where each value came from; a policy error that says
"promise[2].judge.oracle: unknown oracle" is only half as useful without "line 41". This
scanner walks the text once, follows table headers (``[a.b]``, ``[[a]]``) and key lines
(``k = ...``, dotted and quoted keys), and skips the insides of multi-line strings and arrays.
It is only ever used *after* ``tomllib`` accepted the document, so it may assume valid TOML.
"""

from __future__ import annotations

import re

KeyPath = tuple[str | int, ...]

_BARE = r"[A-Za-z0-9_-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"|\'[^\']*\''
_KEY_PART = rf"(?:{_BARE}|{_QUOTED})"
_DOTTED = rf"{_KEY_PART}(?:\s*\.\s*{_KEY_PART})*"
_HEADER_RE = re.compile(rf"^\s*(\[\[|\[)\s*({_DOTTED})\s*(\]\]|\])")
_KEYLINE_RE = re.compile(rf"^\s*({_DOTTED})\s*=")
_PART_RE = re.compile(_KEY_PART)


def _split_key(dotted: str) -> list[str]:
    parts = []
    for match in _PART_RE.finditer(dotted):
        text = match.group(0)
        if text[0] in "\"'":
            text = text[1:-1]
        parts.append(text)
    return parts


def _scan_value_state(text: str, depth: int, in_ml: str | None) -> tuple[int, str | None]:
    """Advance bracket depth and multi-line-string state over one line's value text."""
    i = 0
    while i < len(text):
        if in_ml is not None:
            end = text.find(in_ml, i)
            if end < 0:
                return depth, in_ml
            i = end + 3
            in_ml = None
            continue
        ch = text[i]
        if text.startswith('"""', i) or text.startswith("'''", i):
            in_ml = text[i : i + 3]
            i += 3
            continue
        if ch in "\"'":
            end = i + 1
            while end < len(text) and text[end] != ch:
                end += 2 if (ch == '"' and text[end] == "\\") else 1
            i = end + 1
            continue
        if ch == "#":
            break
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        i += 1
    return depth, in_ml


def key_lines(text: str) -> dict[KeyPath, int]:
    """Return {key path: 1-based line} for every table, array-of-tables entry and key."""
    lines: dict[KeyPath, int] = {}
    counts: dict[tuple[str, ...], int] = {}
    table: KeyPath = ()
    depth = 0
    in_ml: str | None = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if depth > 0 or in_ml is not None:
            depth, in_ml = _scan_value_state(line, depth, in_ml)
            continue
        header = _HEADER_RE.match(line)
        if header:
            names = _split_key(header.group(2))
            if header.group(1) == "[[":
                key = tuple(names)
                index = counts.get(key, 0)
                counts[key] = index + 1
                table = (*_resolve(names[:-1], counts), names[-1], index)
            else:
                table = tuple(_resolve(names, counts))
            lines.setdefault(table, lineno)
            continue
        keyline = _KEYLINE_RE.match(line)
        if keyline:
            path = (*table, *_split_key(keyline.group(1)))
            lines.setdefault(path, lineno)
            depth, in_ml = _scan_value_state(line[keyline.end() :], 0, None)
    return lines


def _resolve(names: list[str], counts: dict[tuple[str, ...], int]) -> list[str | int]:
    """Insert the current index after each prefix that names an array of tables."""
    out: list[str | int] = []
    for i, name in enumerate(names):
        out.append(name)
        seen = counts.get(tuple(names[: i + 1]))
        if seen:
            out.append(seen - 1)
    return out


def line_of(lines: dict[KeyPath, int], path: KeyPath) -> int | None:
    """The line of *path*, or of its nearest ancestor that has one."""
    probe = tuple(path)
    while probe:
        if probe in lines:
            return lines[probe]
        probe = probe[:-1]
    return None
