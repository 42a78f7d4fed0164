"""`pr-test-vm lab ...` without root: status of a namespace that does not exist, exec refusals."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

from typer.testing import Result

Invoke = Callable[..., Result]
MISSING = f"no-such-lab-{os.getpid()}"


def test_status_of_a_missing_lab_says_not_ready(cli: Invoke) -> None:
    result = cli(["lab", "status", "--namespace", MISSING, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["namespace"] == MISSING
    assert doc["namespace_exists"] is False
    assert doc["ready"] is False
    assert [d["name"] for d in doc["daemons"]] == ["virtlogd", "libvirtd"]
    assert all(d["in_namespace"] is False for d in doc["daemons"])


def test_status_for_people(cli: Invoke) -> None:
    result = cli(["lab", "status", "-n", MISSING])
    assert result.exit_code == 0
    assert f"namespace:  {MISSING} (missing)" in result.stdout
    assert "ready:      no" in result.stdout


def test_exec_needs_the_namespace_and_a_command(cli: Invoke) -> None:
    result = cli(["lab", "exec", "-n", MISSING, "--", "true"])
    assert result.exit_code == 4
    assert "does not exist" in result.stderr and "pr-test-vm lab up" in result.stderr
    result = cli(["lab", "exec", "-n", MISSING])
    assert result.exit_code == 2


def test_invalid_namespace_name_is_refused(cli: Invoke) -> None:
    result = cli(["lab", "status", "-n", "../../etc"])
    assert result.exit_code == 2
    assert "invalid namespace name" in result.stderr


def test_namespace_from_the_environment(cli: Invoke) -> None:
    result = cli(["lab", "status", "--json"], env={"STAGINGVM_LAB_NAMESPACE": MISSING})
    assert json.loads(result.stdout)["namespace"] == MISSING
