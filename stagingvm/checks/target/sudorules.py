"""Sudo rules compared by what they run, not by how they are spelled (pure functions).

A rule ``/run/current-system/sw/bin/docker ps`` and a policy entry ``docker ps`` (or
``/usr/bin/docker ps`` on a host where that is the same file) say the same thing when both
commands resolve to one file (``readlink -f`` and dev:ino, as root saw them) and the
arguments are equal. This is also how sudo itself matches a command: by the file it runs.
A policy entry may name a command by its bare name (``docker``, ``journalctl``): that is
"the real client" for docker and "the tool root finds" for the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stagingvm.checks.sudolist import parse_sudo_list
from stagingvm.checks.target.facts import TargetFacts


@dataclass(frozen=True)
class Match:
    rule: str  # the listed command, as sudo spells it
    allowed: str | None  # the policy entry it equals, None when none
    runs: str  # the file the rule's command runs ("" unknown)
    how: str  # "same file" | "same spelling" | why it matched nothing

    def evidence(self) -> str:
        if self.allowed is None:
            return f"{self.rule}: {self.how}"
        if self.rule == self.allowed:
            return f"{self.rule}: allowed"
        return f"{self.rule} = allowed '{self.allowed}' ({self.how}: {self.runs or '?'})"


def split_command(command: str) -> tuple[str, str]:
    """``"/bin/x -a b"`` -> ``("/bin/x", "-a b")`` (arguments whitespace-normalised)."""
    words = command.split()
    return (words[0], " ".join(words[1:])) if words else ("", "")


def idents(word: str, facts: TargetFacts) -> set[str]:
    """The files (dev:ino) a command word runs on this target, by root's discovery."""
    if word.startswith("/"):
        res = facts.resolved.get(word)
        return {res.ident} if res is not None and res.exists and res.ident else set()
    if word == "docker":
        return {c.path.ident for c in facts.real_clients() if c.path.ident}
    path = facts.tool(word)
    res = facts.resolved.get(path) if path else None
    return {res.ident} if res is not None and res.exists and res.ident else set()


def runs(word: str, facts: TargetFacts) -> str:
    if word.startswith("/"):
        res = facts.resolved.get(word)
        return res.resolved if res is not None else ""
    if word == "docker":
        real = facts.real_clients()
        return real[0].path.resolved if real else ""
    path = facts.tool(word)
    res = facts.resolved.get(path) if path else None
    return res.resolved if res is not None else ""


def match_rule(command: str, allowed: Sequence[str], facts: TargetFacts | None) -> Match:
    """The policy entry *command* (a listed rule) equals, if any."""
    word, args = split_command(command)
    mine = idents(word, facts) if facts is not None else set()
    target = runs(word, facts) if facts is not None else ""
    for entry in allowed:
        aword, aargs = split_command(entry)
        if aargs != args:
            continue
        if aword == word:
            return Match(command, entry, target, "same spelling")
        if facts is not None and mine and mine & idents(aword, facts):
            return Match(command, entry, target, "same file")
        if not mine and not aword.startswith("/") and word.rsplit("/", 1)[-1] == aword:
            return Match(command, entry, target, "same name, no such file on this host")
    why = "a wildcard leaves arguments open" if "*" in command else "not allowed"
    if command == "ALL":
        why = "every command"
    return Match(command, None, target, why)


def sudo_spelling(tool: str, facts: TargetFacts) -> str:
    """How the probes call *tool* through sudo: the path a rule names for it, if one does.

    Else the path root finds (sudo then refuses it, which is the point of the probe).
    """
    want = idents(tool, facts)
    for rule in listed_commands(facts):
        token = rule.split()[0]
        if token.startswith("/") and want and idents(token, facts) & want:
            return token
    if tool == "docker":
        real = facts.real_clients()
        return real[0].path.spelled if real else ""
    return facts.tool(tool)


def sudo_runs_bare(facts: TargetFacts) -> list[str]:
    """Listed commands that run sudo itself with a bare command name (``sudo iptables -L``).

    The inner sudo looks that name up in the PATH it was given: the user's own, unless a
    ``secure_path`` is set. Returns each such command as the rule spells it.
    """
    sudo_ids = idents("sudo", facts)
    out: list[str] = []
    for rule in listed_commands(facts):
        words = rule.split()
        if len(words) < 2 or words[1].startswith(("/", "-")):
            continue
        if words[0].startswith("/") and idents(words[0], facts) & sudo_ids and rule not in out:
            out.append(rule)
    return out


def listed_commands(facts: TargetFacts) -> list[str]:
    """The commands of root's ``sudo -l -U USER``, one per entry."""
    return [r.command for r in parse_sudo_list("\n".join(facts.sudo_lines))]


def secure_path(facts: TargetFacts) -> str | None:
    """``secure_path`` among the user's matching Defaults (root's ``sudo -l -U``)."""
    text = " ".join(facts.sudo_lines)
    marker = "secure_path="
    at = text.find(marker)
    if at < 0:
        return None
    value = (
        text[at + len(marker) :].split(",")[0].split()[0]
        if text[at + len(marker) :].strip()
        else ""
    )
    return value.replace("\\:", ":")
