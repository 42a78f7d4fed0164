"""What a CI job tells about itself through the environment: PR number and commit.

Read only by the CLI (the library never looks at the environment). GitHub Actions and Gitea
Actions (which sets the same GITHUB_* variables, plus GITEA_ACTIONS) put the event in a JSON
file named by GITHUB_EVENT_PATH; GitLab CI is understood too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from stagingvm.boundedread import EVENT_CAP, parse_json, read_bounded

_PULL_REF = re.compile(r"refs/pull/(\d+)/")


def pr_and_commit(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """``(pr_number, commit_sha)`` of the current CI job, either may be None."""
    pr: str | None = None
    commit: str | None = None
    event_path = env.get("GITHUB_EVENT_PATH")
    if event_path:
        # Bounded, a regular file only (a FIFO or /dev/zero is bad input, exit 2).
        text = read_bounded(Path(event_path), EVENT_CAP, "GITHUB_EVENT_PATH event file")
        try:
            event = parse_json(text, "GITHUB_EVENT_PATH event file")
        except ValueError:
            event = {}
        pull = event.get("pull_request") if isinstance(event, dict) else None
        if isinstance(pull, dict):
            if pull.get("number") is not None:
                pr = str(pull["number"])
            head = pull.get("head")
            if isinstance(head, dict) and isinstance(head.get("sha"), str):
                commit = head["sha"]
    if pr is None:
        match = _PULL_REF.match(env.get("GITHUB_REF", ""))
        pr = match.group(1) if match else env.get("CI_MERGE_REQUEST_IID") or None
    if commit is None:
        commit = env.get("GITHUB_SHA") or env.get("CI_COMMIT_SHA") or None
    return pr, commit
