"""Policy files: the built-in policy loads, and every kind of mistake names file, line, key."""

from __future__ import annotations

from pathlib import Path

import pytest

from stagingvm.errors import ConfigError
from stagingvm.policy import FAMILIES, PolicyError, builtin_names, load_policy, parse_policy
from stagingvm.policy.toml_lines import key_lines

GOOD = """\
version = 1
name = "demo"

[user]
name = "ai-worker"
groups_forbidden = ["docker"]

[sudo]
allowed = ["/usr/bin/docker  ps"]

[probes]
families = ["control", "secrets"]
timeout = 10

[[promise]]
id = "list"
kind = "allow"
commands = ["docker ps"]
judge = { stdout_contains = ["{service}"] }

[[promise]]
id = "no-exec"
kind = "deny"
commands = ['''docker exec {victim} sh -c "echo {mark}"''']
[promise.judge]
oracle = "victim-write"
"""


def test_builtin_ai_worker_policy_matches_the_seeds_intent() -> None:
    assert "ai-worker" in builtin_names()
    policy = load_policy("builtin:ai-worker")
    assert policy.user.name == "ai-worker"
    assert "docker" in policy.user.groups_forbidden
    assert policy.probes.families == FAMILIES
    allowed = {p.id for p in policy.promises if p.kind == "allow"}
    assert {"list-containers", "inspect-service", "restart-service", "run-container"} <= allowed
    denied = {p.id.removeprefix("no-") for p in policy.promises if p.kind == "deny"}
    # the seeds' blocklist: exec cp commit diff export import load save attach push tag
    for verb in (
        "exec",
        "commit",
        "diff",
        "export",
        "import",
        "load",
        "save",
        "attach",
        "push",
        "tag",
    ):
        assert verb in denied
    assert {"cp-in", "cp-out"} <= denied
    assert all(p.judge.oracle for p in policy.promises if p.kind == "deny")
    assert not any("*" in a for a in policy.sudo.allowed if "docker" in a and "ai-docker" not in a)


def test_good_policy_parses_with_defaults_and_lines(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(GOOD)
    policy = load_policy(path)
    assert policy.source == str(path)
    assert policy.sudo.allowed == ("/usr/bin/docker ps",)  # whitespace-normalised
    assert policy.probes.families == ("control", "secrets")
    assert policy.probes.timeout == 10.0 and policy.probes.concurrency == 8
    assert policy.promises[0].judge.exit_zero is True
    assert policy.promises[1].judge.exit_zero is False
    assert policy.promises[1].judge.oracle == "victim-write"
    assert policy.promises[1].line == 21
    assert policy.containers.victim == "stagingvm-victim"
    assert policy.host.docker == ""  # discovery finds the real clients


def _error(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, source="bad.toml")
    assert isinstance(info.value, ConfigError)
    assert info.value.exit_code == 2
    return info.value


@pytest.mark.parametrize(
    ("edit", "line", "key", "words"),
    [
        (("[user]\n", "[user]\nshell = 'bash'\n"), 5, "user.shell", "unknown key"),
        (
            ("[user]\n", "[user]\ncredential = 'stagingvm.authorized_keys.x'\n"),
            5,
            "user.credential",
            "no longer part of the format",
        ),
        (("[probes]\n", "[host]\ndocker = 'docker'\n[probes]\n"), 12, "host.docker", "absolute"),
        (("timeout = 10", "timeout = 'ten'"), 13, "probes.timeout", "must be float"),
        (
            ('families = ["control", "secrets"]', 'families = ["control", "magic"]'),
            12,
            "probes.families",
            "unknown probe family 'magic'",
        ),
        (
            ('oracle = "victim-write"', 'oracle = "exit-code"'),
            26,
            "promise[1].judge.oracle",
            "not an oracle",
        ),
        (('kind = "allow"', 'kind = "maybe"'), 17, "promise[0].kind", "'allow' or 'deny'"),
        (
            ("{service}", "{nosuch}"),
            19,
            "promise[0].judge.stdout_contains",
            "unknown placeholder {nosuch}",
        ),
        (("version = 1", "version = 2"), 1, "version", "unsupported version 2"),
        (('name = "ai-worker"', "name = 42"), 5, "user.name", "must be str"),
        (('id = "no-exec"', 'id = "list"'), 22, "promise[1].id", "duplicate promise id"),
        (('allowed = ["/usr/bin/docker  ps"]', "allowed = [1]"), 9, "sudo.allowed", "only strings"),
    ],
)
def test_bad_policies_name_line_and_key(
    edit: tuple[str, str], line: int, key: str, words: str
) -> None:
    assert edit[0] in GOOD
    err = _error(GOOD.replace(edit[0], edit[1], 1))
    assert err.line == line, str(err)
    assert err.key == key, str(err)
    assert words in str(err)
    assert str(err).startswith(f"bad.toml:{line}: {key}: ")


def test_deny_promise_without_oracle_is_refused() -> None:
    err = _error(GOOD.replace('[promise.judge]\noracle = "victim-write"\n', ""))
    assert err.key == "promise[1].judge"
    assert "exit code alone" in str(err)


def test_invalid_toml_reports_its_line() -> None:
    err = _error(GOOD.replace("[sudo]", "[sudo"))
    assert err.line == 8 and err.key is None
    assert "not valid TOML" in str(err)


def test_missing_user_table_and_missing_file(tmp_path: Path) -> None:
    err = _error("version = 1\nname = 'x'\n")
    assert "missing required table [user]" in str(err)
    with pytest.raises(PolicyError, match="file not found"):
        load_policy(tmp_path / "nope.toml")
    with pytest.raises(PolicyError, match="no built-in policy"):
        load_policy("builtin:nope")


def test_key_lines_follows_tables_arrays_and_multiline_values() -> None:
    text = (
        'a = 1\nb = """\nx = 2\n"""\n[t]\nc = [\n  "d = 3",\n]\ne.f = 4\n'
        "[[p]]\ng = 5\n[[p]]\ng = 6\n"
    )
    lines = key_lines(text)
    assert lines[("a",)] == 1 and lines[("b",)] == 2
    assert ("x",) not in lines and ("t", "d") not in lines
    assert lines[("t", "c")] == 6 and lines[("t", "e", "f")] == 9
    assert lines[("p", 0, "g")] == 11 and lines[("p", 1, "g")] == 13
