"""``--policy`` / ``--policy-ref``, shared by ``check`` and ``test``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stagingvm.errors import InvalidInputError

if TYPE_CHECKING:
    from stagingvm.cli.output import Output
    from stagingvm.policy.model import Policy

DEFAULT_POLICY = "builtin:ai-worker"

PolicyRef = Annotated[
    str | None,
    typer.Option(
        "--policy-ref",
        metavar="REF:PATH",
        help="Read the policy from git: PATH as commit REF has it (the base branch), not "
        "from the work tree; the built-in ai-worker policy when PATH is not there.",
    ),
]


def load_chosen_policy(out: Output, policy: str, policy_ref: str | None) -> Policy:
    """The policy *policy* or *policy_ref* names (a fall-back is said on stderr)."""
    from stagingvm.policy import load_policy, load_policy_ref

    if policy_ref is None:
        loaded = load_policy(policy)
    else:
        if policy != DEFAULT_POLICY:
            raise InvalidInputError("give --policy or --policy-ref, not both")
        loaded, note = load_policy_ref(policy_ref, Path.cwd())
        if note is not None:
            out.warn(note)
    return loaded
