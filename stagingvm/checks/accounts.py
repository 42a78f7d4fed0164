"""Judging the account itself: ``sudo -n -l`` output and group membership (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from stagingvm.checks.sudolist import SudoRule, parse_sudo_list
from stagingvm.checks.target.sudorules import match_rule

if TYPE_CHECKING:
    from stagingvm.checks.target.facts import TargetFacts

__all__ = ["SudoRule", "judge_groups", "judge_sudo", "parse_sudo_list"]


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
