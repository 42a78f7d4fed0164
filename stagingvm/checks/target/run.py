"""Run discovery on a guest: the user's script first, then root's (told the user's PATH)."""

from __future__ import annotations

import math
import shlex

from stagingvm.checks.preamble import wrap
from stagingvm.checks.target import scripts
from stagingvm.checks.target.facts import TargetFacts
from stagingvm.checks.target.parse import parse_root, parse_user
from stagingvm.checks.transport import Shell, run_evidence
from stagingvm.policy.model import Policy

USER_TIMEOUT = 120.0
ROOT_TIMEOUT = 300.0


def root_argv(policy: Policy, user_path: tuple[str, ...], factor: float = 1.0) -> list[str]:
    """Root's discovery script with its (quoted) inputs; *factor* stretches its time-outs."""
    allowed = [a.split()[0] for a in policy.sudo.allowed if a.startswith("/")]
    env = {
        "ROOTPATH": scripts.ROOT_PATH,
        "USERNAME": policy.user.name,
        "USERPATH": ":".join(user_path),
        "ALLOWED": " ".join(dict.fromkeys(allowed)),
        "TOOLS": " ".join(scripts.TOOLS),
        "HELPER": policy.host.helper,
        "TF": str(max(1, math.ceil(factor))),
    }
    assigns = "\n".join(f"export {k}={shlex.quote(v)}" for k, v in env.items())
    return ["bash", "-c", assigns + "\n" + scripts.ROOT_SCRIPT]


def discover(root: Shell, user: Shell, policy: Policy, *, factor: float = 1.0) -> TargetFacts:
    """Everything discovery finds; trouble is noted in ``facts.notes``, never raised."""
    facts = TargetFacts(user=policy.user.name)
    limit = USER_TIMEOUT * factor
    ev = run_evidence(user, wrap("set +e", scripts.USER_SCRIPT, limit), limit + 10)
    if ev.transport_error:
        facts.notes.append(f"the user's discovery could not run: {ev.transport_error}")
    parse_user(ev.stdout, facts)
    ev = run_evidence(root, root_argv(policy, facts.ssh_path, factor), ROOT_TIMEOUT * factor)
    if ev.transport_error:
        facts.notes.append(f"root's discovery could not run: {ev.transport_error}")
    parse_root(ev.stdout, facts)
    return facts
