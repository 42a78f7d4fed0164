"""Parsing ``sudo -l`` output into rules (a pure function, shared by the account check and
discovery's rule resolution)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_RULE_RE = re.compile(r"^\s+\((?P<runas>[^)]*)\)\s+(?P<rest>.*)$")
_TAG_RE = re.compile(r"^(?:[A-Z_]+:\s*)+")


@dataclass(frozen=True)
class SudoRule:
    runas: str
    tags: tuple[str, ...]
    command: str


def parse_sudo_list(output: str) -> list[SudoRule]:
    """Parse the command section of ``sudo -n -l``; other sections are ignored.

    A user with no rules gets "may not run sudo" (no rules). Commas inside a command are
    escaped by sudo as ``\\,``, so splitting on an unescaped ", " is exact.
    """
    rules: list[SudoRule] = []
    in_commands = False
    for line in output.splitlines():
        if re.search(r"may run the following commands", line):
            in_commands = True
            continue
        if not in_commands:
            continue
        if line and not line[0].isspace():
            in_commands = False
            continue
        match = _RULE_RE.match(line)
        if not match:
            continue
        rest = match.group("rest")
        tag_match = _TAG_RE.match(rest)
        tags: tuple[str, ...] = ()
        if tag_match:
            tags = tuple(t.strip().rstrip(":") for t in tag_match.group(0).split(":") if t.strip())
            rest = rest[tag_match.end() :]
        for command in re.split(r"(?<!\\), ", rest):
            command = " ".join(re.sub(r"\\([,:=\\])", r"\1", command).split())
            if command:
                rules.append(SudoRule(match.group("runas").strip(), tags, command))
    return rules
