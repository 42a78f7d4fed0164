"""Root's discovery script run for real (bash on this machine) against a hostile user PATH.

The user's PATH is untrusted and root looks into its directories: a ``docker`` there that is
a FIFO (or a device) must not block root's script, and a user-writable file is never run.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from stagingvm.checks.target.facts import TargetFacts
from stagingvm.checks.target.parse import parse_root
from stagingvm.checks.target.run import root_argv
from stagingvm.policy import load_policy


def _run_root_script(user_dir: Path) -> str:
    policy = load_policy("builtin:ai-worker")
    argv = root_argv(policy, (str(user_dir),))
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    return done.stdout


def test_a_fifo_named_docker_on_the_users_path_does_not_block_root(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "docker")
    out = _run_root_script(tmp_path)
    assert "DISCOVER-ROOT-OK" in out
    facts = TargetFacts(user="ai-worker")
    parse_root(out, facts)
    spelled = str(tmp_path / "docker")
    assert spelled in facts.resolved
    assert facts.resolved[spelled].kind == "other"
    assert spelled not in [c.path.spelled for c in facts.real_clients()]


def test_a_user_writable_client_is_never_run_by_root(tmp_path: Path) -> None:
    witness = tmp_path / "ran"
    fake = tmp_path / "docker"
    fake.write_text(f"#!/bin/sh\ntouch {witness}\necho Docker version 99\n")
    fake.chmod(0o777)
    out = _run_root_script(tmp_path)
    assert "DISCOVER-ROOT-OK" in out
    assert not witness.exists()
    facts = TargetFacts(user="ai-worker")
    parse_root(out, facts)
    assert facts.resolved[str(fake)].kind == "script"
    assert not [c for c in facts.clients if c.path.spelled == str(fake) and c.version]


def test_fields_with_tabs_and_newlines_stay_one_field(tmp_path: Path) -> None:
    odd = tmp_path / "a\tb\nc"
    odd.mkdir()
    (odd / "docker").write_bytes(b"")
    out = _run_root_script(odd)
    assert "DISCOVER-ROOT-OK" in out
    rows = [line.split("\t") for line in out.splitlines() if line.startswith("RES\t")]
    assert all(len(r) == 7 for r in rows), rows
    assert [r[6] for r in rows if r[1].endswith("a b c/docker")] == ["empty"]
