"""Judging the account itself: ``sudo -n -l`` output and group membership (pure functions)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stagingvm.checks.target.facts import TargetFacts

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


def judge_sudo(
    rules: Sequence[SudoRule],
    allowed: Sequence[str],
    runas: Sequence[str],
    target: TargetFacts | None = None,
) -> tuple[list[str], list[str]]:
    """(problems, evidence) of the listed rules: each must run what an allowed entry runs.

    Commands are compared by the file they run (root's discovery, *target*) and then by
    their arguments, so ``/run/current-system/sw/bin/docker ps`` equals an allowed
    ``docker ps``; both spellings go into the evidence. Without *target*, by spelling.
    """
    from stagingvm.checks.target.sudorules import match_rule

    allowed = [" ".join(a.split()) for a in allowed]
    problems, evidence = [], []
    for rule in rules:
        targets = [t.strip() for t in rule.runas.split(":")[0].split(",")]
        found = match_rule(rule.command, allowed, target)
        if any(t not in runas for t in targets):
            problems.append(f"({rule.runas}) {rule.command}: runs as {rule.runas!r}")
        elif found.allowed is None:
            runs = (
                f" (runs {found.runs})"
                if found.runs and found.runs != rule.command.split()[0]
                else ""
            )
            problems.append(f"({rule.runas}) {found.evidence()}{runs}")
        else:
            evidence.append(f"({rule.runas}) {found.evidence()}")
    return problems, (evidence if not problems else [])


def judge_groups(
    groups: Sequence[str], required: Sequence[str], forbidden: Sequence[str]
) -> list[str]:
    have = set(groups)
    problems = [f"member of forbidden group {g!r}" for g in forbidden if g in have]
    problems += [f"not a member of required group {g!r}" for g in required if g not in have]
    return problems
