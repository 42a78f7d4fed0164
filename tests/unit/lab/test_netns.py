"""Process and namespace detection of the lab, on this test's own processes (no root needed)."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from stagingvm.errors import InvalidInputError
from stagingvm.lab import daemons, netns


def test_process_comm_sees_live_processes_and_not_zombies() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert netns.process_comm(child.pid) == "sleep"
        assert netns.process_ns_id(child.pid) == netns.process_ns_id(os.getpid())
    finally:
        child.kill()
    # Killed but not reaped yet: a zombie keeps its name in /proc but is not running.
    for _ in range(100):
        if netns.process_comm(child.pid) is None:
            break
        time.sleep(0.02)
    assert netns.process_comm(child.pid) is None
    child.wait()
    assert netns.process_ns_id(child.pid) is None


def test_names_are_validated_before_any_command() -> None:
    for bad in ("", "../etc", "Lab", "a b", "x" * 64, "-n"):
        with pytest.raises(InvalidInputError):
            netns.exec_argv(bad, ["true"])
    assert netns.exec_argv("stagingvm-lab", ["ip", "a"]) == [
        "ip",
        "netns",
        "exec",
        "stagingvm-lab",
        "ip",
        "a",
    ]


def test_missing_namespace_contains_nothing() -> None:
    name = f"no-such-ns-{os.getpid()}"
    assert not netns.exists(name)
    assert not netns.in_namespace(os.getpid(), name)
    assert netns.processes_in(name) == []


def test_daemon_state_when_nothing_runs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ghost = daemons.Daemon("svm-no-such-d", ("true",), tmp_path / "ghost.pid")
    assert daemons.running_pids(ghost) == []
    state = daemons.state(ghost, "stagingvm-lab")
    assert state.pid is None and not state.running and not state.in_namespace
    assert state.to_json() == {
        "name": "svm-no-such-d",
        "pid": None,
        "running": False,
        "in_namespace": False,
        "action": None,
    }
    assert daemons.stop(ghost, "stagingvm-lab").action == ""
