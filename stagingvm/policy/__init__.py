"""Policy files: what a design promises about one restricted user (TOML, ``version = 1``).

The built-in ones are in ``builtin/``. May import the top-level leaves and ``config``.
"""

from stagingvm.policy.loader import (
    PolicyError,
    builtin_names,
    load_policy,
    load_policy_ref,
    parse_policy,
)
from stagingvm.policy.model import FAMILIES, Judge, Policy, Promise

__all__ = [
    "FAMILIES",
    "Judge",
    "Policy",
    "PolicyError",
    "Promise",
    "builtin_names",
    "load_policy",
    "load_policy_ref",
    "parse_policy",
]
