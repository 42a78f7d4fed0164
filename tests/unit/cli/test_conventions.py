"""Habits of virsh/vagrant users: global options after the verb, usage errors in the
``error:``/``hint:`` form, LIBVIRT_DEFAULT_URI, shell completion scripts."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from typer.testing import Result

from stagingvm.cli import globalopts
from stagingvm.cli.app import get_app

Invoke = Callable[..., Result]


def _group():  # type: ignore[no-untyped-def]
    import typer.main

    return typer.main.get_command(get_app())


def hoisted(*args: str) -> list[str]:
    group = _group()
    ctx = group.make_context("pr-test-vm", ["--help"], resilient_parsing=True)
    return globalopts.hoist(group, ctx, list(args))


def test_global_options_after_the_verb_move_before_it() -> None:
    assert hoisted("list", "--uri", "test:///default", "--json") == [
        "--uri", "test:///default", "list", "--json",
    ]  # fmt: skip
    assert hoisted("list", "--uri=test:///default", "-q") == ["--uri=test:///default", "-q", "list"]
    assert hoisted("--debug", "status", "pr-42", "--data-dir", "/d") == [
        "--debug", "--data-dir", "/d", "status", "pr-42",
    ]  # fmt: skip
    # A sub-command group: lab up --uri X.
    assert hoisted("lab", "status", "--debug") == ["--debug", "lab", "status"]


def test_what_is_not_a_global_option_stays() -> None:
    # After NAME, ssh passes everything on to the remote command, --uri included.
    assert hoisted("ssh", "pr-42", "--", "env", "--uri") == ["ssh", "pr-42", "--", "env", "--uri"]
    assert hoisted("ssh", "pr-42", "ls", "-q") == ["ssh", "pr-42", "ls", "-q"]
    # After --, nothing is an option.
    assert hoisted("list", "--", "--debug") == ["list", "--", "--debug"]
    # Unknown options stay for Click to report.
    assert hoisted("list", "--nope") == ["list", "--nope"]


def test_list_takes_uri_after_the_verb(cli: Invoke, tmp_path: Path) -> None:
    result = cli(["list", "--uri", "test:///default", "--data-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []


def test_usage_errors_in_the_documented_form(cli: Invoke) -> None:
    result = cli(["list", "--no-such-option"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: No such option: --no-such-option",
        "hint: see `pr-test-vm list --help`",
    ]
    assert result.stdout == ""
    verb = cli(["nosuch"])
    assert verb.exit_code == 2
    assert verb.stderr.splitlines()[0].startswith("error: No such command 'nosuch'")
    assert verb.stderr.splitlines()[1] == "hint: see `pr-test-vm --help`"
    missing = cli(["status"])
    assert missing.exit_code == 2
    assert missing.stderr.startswith("error: Missing argument 'NAME'")


def test_libvirt_default_uri_sits_below_stagingvm_uri(cli: Invoke) -> None:
    def uri(env: dict[str, str], *flags: str) -> dict[str, object]:
        result = cli([*flags, "config", "--json"], env=env)
        assert result.exit_code == 0, result.output
        entry: dict[str, object] = json.loads(result.stdout)["settings"]["uri"]
        return entry

    plain = uri({"LIBVIRT_DEFAULT_URI": "qemu:///session"})
    assert (plain["value"], plain["source"], plain["detail"]) == (
        "qemu:///session", "environment", "LIBVIRT_DEFAULT_URI",
    )  # fmt: skip
    ours = uri({"LIBVIRT_DEFAULT_URI": "qemu:///session", "STAGINGVM_URI": "test:///default"})
    assert (ours["value"], ours["detail"]) == ("test:///default", "STAGINGVM_URI")
    flag = uri({"LIBVIRT_DEFAULT_URI": "qemu:///session"}, "--uri", "test:///default")
    assert (flag["value"], flag["source"]) == ("test:///default", "flag")
    bad = cli(["config"], env={"LIBVIRT_DEFAULT_URI": "not a uri"})
    assert bad.exit_code == 2
    assert "LIBVIRT_DEFAULT_URI" in bad.stderr


def test_completion_scripts_for_bash_zsh_fish(cli: Invoke) -> None:
    for shell, marker in (
        ("bash", "complete -o default -F _pr_test_vm_completion pr-test-vm"),
        ("zsh", "compdef _pr_test_vm_completion pr-test-vm"),
        ("fish", "complete --command pr-test-vm"),
    ):
        # What the Nix package runs to install the files; --show-completion detects the shell.
        result = cli([], env={"_PR_TEST_VM_COMPLETE": f"source_{shell}"})
        assert result.exit_code == 0, result.output
        assert marker in result.stdout
        assert "_PR_TEST_VM_COMPLETE" in result.stdout


def test_verbs_complete_through_typers_protocol(cli: Invoke) -> None:
    result = cli(
        [],
        env={"_PR_TEST_VM_COMPLETE": "complete_bash", "COMP_WORDS": "pr-test-vm ssh-c",
             "COMP_CWORD": "1"},
    )  # fmt: skip
    assert result.exit_code == 0
    assert result.stdout.split() == ["ssh-config"]


def test_missing_test_driver_file_says_so_without_libxml2_noise(
    cli: Invoke, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.xml"
    result = cli(["--uri", f"test://{missing}", "list"])
    assert result.exit_code == 4
    assert result.stderr.splitlines() == [
        f"error: cannot connect to libvirt at test://{missing}: the test driver file "
        f"{missing} does not exist",
        "hint: name an existing libvirt test driver XML file, or use test:///default",
    ]  # no "I/O warning" line, no "start libvirtd"


def test_data_dir_that_is_a_file_is_named(cli: Invoke, tmp_path: Path) -> None:
    a_file = tmp_path / "data"
    a_file.write_text("")
    result = cli(
        ["--uri", "test:///default", "--data-dir", str(a_file), "start", "x", "--base", "y",
         "--no-wait"],
        env={"STAGINGVM_ACCEL": "tcg", "STAGINGVM_STORAGE_POOL": str(tmp_path / "pool")},
    )  # fmt: skip
    assert result.exit_code == 2
    assert f"hint: {a_file} is a file, not a directory" in result.stderr
    assert "run as root" not in result.stderr
    assert a_file.read_text() == ""


def test_help_topics_print_the_shipped_pages(cli: Invoke) -> None:
    import tomllib

    root = Path(__file__).resolve().parents[3]
    listed = cli(["help"])
    assert listed.exit_code == 0
    assert {"configuration", "ssh", "cli"} <= set(listed.stdout.split())
    page = cli(["help", "ssh"])
    assert page.exit_code == 0
    assert page.stdout == (root / "docs" / "ssh.md").read_text(encoding="utf-8")
    missing = cli(["help", "nosuch"])
    assert missing.exit_code == 3
    assert "hint: topics: " in missing.stderr
    # The wheel carries the pages where `help` looks for them when installed.
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert project["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]["docs"] == (
        "stagingvm/_docs"
    )


def test_config_hints_name_a_help_topic_not_a_repository_path(cli: Invoke, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("memroy = 4096\n")
    result = cli(["--config", str(config), "config"])
    assert result.exit_code == 2
    broken = tmp_path / "b.toml"
    broken.write_text("[[[\n")
    result = cli(["--config", str(broken), "config"])
    assert result.exit_code == 2
    assert "hint: see `pr-test-vm help configuration` for the format" in result.stderr


def test_the_verb_is_found_past_the_global_options() -> None:
    from stagingvm.cli.app import _verb

    assert _verb(["--uri", "test:///default", "-q", "list", "--json"]) == "list"
    assert _verb(["--uri=test:///default", "--data-dir", "/d", "lab", "up"]) == "lab"
    assert _verb(["--debug", "--config", "list", "status"]) == "status"  # a value, not a verb
    for whole in (["--help", "list"], ["-q", "--version"], ["--show-completion"], ["-v"], []):
        assert _verb(whole) is None, whole


def test_value_options_are_the_roots_own() -> None:
    """What `_verb` skips is what the root group really takes a value for."""
    import typer.main

    from stagingvm.cli.app import VALUE_OPTIONS, WHOLE_TREE_OPTIONS, get_app

    root = typer.main.get_command(get_app())
    valued = {o for p in root.params if not getattr(p, "is_flag", False) for o in p.opts}
    assert valued == VALUE_OPTIONS
    eager = {o for p in root.params if getattr(p, "is_eager", False) for o in p.opts}
    assert eager <= WHOLE_TREE_OPTIONS


def test_an_app_for_one_verb_builds_only_it() -> None:
    import typer.main

    from stagingvm.cli.app import get_app

    assert list(typer.main.get_command(get_app("list")).commands) == ["list"]  # type: ignore[attr-defined]
    lab = typer.main.get_command(get_app("lab"))
    assert list(lab.commands) == ["lab"]  # type: ignore[attr-defined]
    assert "up" in lab.commands["lab"].commands  # type: ignore[attr-defined]
    everything = typer.main.get_command(get_app("nosuch"))  # Click then suggests a verb
    assert "list" in everything.commands and "start" in everything.commands  # type: ignore[attr-defined]


def test_one_verb_runs_as_in_the_whole_tree(tmp_path: Path) -> None:
    """The console script (one verb's app) answers as the whole app does: help, errors."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[3]
    env = {"PYTHONPATH": str(root), "HOME": str(tmp_path), "PATH": os.environ["PATH"]}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        code = "import sys; sys.argv[0] = 'pr-test-vm'; from stagingvm.cli.app import main; main()"
        return subprocess.run([sys.executable, "-c", code, *args], cwd=root, env=env,
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip

    helped = run("--data-dir", str(tmp_path / "d"), "list", "--help")
    assert helped.returncode == 0 and "Usage: pr-test-vm list [OPTIONS]" in helped.stdout
    assert "Exit codes:" in helped.stdout
    listed = run("list", "--uri", "test:///default", "--data-dir", str(tmp_path / "d"), "--json")
    assert (listed.returncode, listed.stdout) == (0, "[]\n"), listed.stderr
    typo = run("lsit")
    assert typo.returncode == 2 and "Did you mean 'list'?" in typo.stderr
    gone = run("status", "nosuch", "--uri", "test:///default", "--data-dir", str(tmp_path / "d"))
    assert gone.returncode == 3 and gone.stderr.startswith("error: no VM named 'nosuch'")
