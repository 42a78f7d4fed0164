"""CLI behaviour that needs no libvirt: help, version, config, name checks, error mapping."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import typer.main
from typer.testing import Result

from stagingvm import __version__
from stagingvm.cli.app import COMMAND_MODULES, get_app
from stagingvm.cli.state import CliState
from stagingvm.config.keys import KEYS

Invoke = Callable[..., Result]

# A URI that would fail with exit 4 if a command ever got as far as libvirt.
NOWHERE = "qemu+unix:///system?socket=/nonexistent/stagingvm-test.sock"
VERBS = [c.name for c in get_app().registered_commands]


def _leaf_paths(command: object, path: list[str]) -> list[list[str]]:
    subs = getattr(command, "commands", {})
    if not subs:
        return [path]
    return [leaf for name, sub in subs.items() for leaf in _leaf_paths(sub, [*path, name])]


# Every command a user can run, sub-commands of groups (`lab up`) included.
LEAVES = _leaf_paths(typer.main.get_command(get_app()), [])


def test_every_module_registers_commands() -> None:
    assert len(COMMAND_MODULES) == len(set(COMMAND_MODULES))
    for verb in ("build", "start", "stop", "destroy", "ssh", "console", "list", "status"):
        assert verb in VERBS
    assert {"rebuild", "config"} <= set(VERBS)


def test_root_help_lists_every_verb(cli: Invoke) -> None:
    result = cli(["--help"])
    assert result.exit_code == 0
    for verb in VERBS:
        assert f"\n  {verb} " in result.stdout
    assert result.stderr == ""


def test_no_arguments_shows_help(cli: Invoke) -> None:
    result = cli([])
    assert "Usage: pr-test-vm" in result.output
    assert "Commands:" in result.output


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_every_verb_has_help_with_an_example(cli: Invoke, path: list[str]) -> None:
    result = cli([*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example:" in result.stdout
    assert f"pr-test-vm {' '.join(path)}" in result.stdout.split("Example:", 1)[1]


def test_version(cli: Invoke) -> None:
    result = cli(["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"pr-test-vm {__version__}\n"


def test_unknown_option_is_a_usage_error(cli: Invoke) -> None:
    result = cli(["list", "--no-such-option"])
    assert result.exit_code == 2
    assert "No such option" in result.stderr
    assert result.stdout == ""


def test_unknown_command_suggests(cli: Invoke) -> None:
    result = cli(["stat", "x"])
    assert result.exit_code == 2
    assert "No such command 'stat'. Did you mean" in result.stderr
    assert "'status'" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["start", "vm1", "--memory", "1"], "error: memory: 1 is out of range (64..1048576 MiB)"),
        (["start", "vm1", "--vcpus", "0"], "error: vcpus: 0 is out of range (1..256)"),
        (["start", "vm1", "--vcpus", "two"], "'two' is not a valid int"),
        (["stop", "vm1", "--timeout", "0"], "error: --timeout: 0.0 is out of range"),
    ],
)
def test_bad_numbers_exit_2_before_libvirt(cli: Invoke, args: list[str], message: str) -> None:
    result = cli(["--uri", NOWHERE, *args])
    assert result.exit_code == 2
    assert message in result.stderr


HOSTILE = [
    "",
    "UPPER",
    "<vm>",
    "a&b",
    "vm'quote",
    'vm"dq',
    "../etc",
    "..",
    "a/b",
    "vm name",
    "vm\nname",
    "vm;rm -rf /",
    "ümlaut",
    "vm\u200b",
    "-leading",
    "a" * 64,
    "$(id)",
]


@pytest.mark.parametrize("name", HOSTILE, ids=lambda n: repr(n)[:20])
@pytest.mark.parametrize(
    "argv",
    [
        ["start", "--"],
        ["stop", "--"],
        ["destroy", "--"],
        ["rebuild", "--"],
        ["status", "--"],
        ["console", "--"],
        ["console", "--log", "--"],
        ["ssh", "--"],
        ["ssh", "--", "root@{}"],
        ["start", "good", "--base"],
        ["build", "--image", "/dev/null", "--name"],
    ],
    ids=lambda a: " ".join(a),
)
def test_hostile_names_exit_2_before_anything(
    cli: Invoke, tmp_path: Path, argv: list[str], name: str
) -> None:
    data_dir = tmp_path / "data"
    args = [*argv[:-1], argv[-1].format(name)] if "{}" in argv[-1] else [*argv, name]
    result = cli(["--uri", NOWHERE, "--data-dir", str(data_dir), *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: invalid ")
    assert "hint: use 1-63 characters" in result.stderr
    assert result.stdout == ""
    assert not data_dir.exists()


def test_hostile_ssh_user(cli: Invoke) -> None:
    result = cli(["--uri", NOWHERE, "ssh", "bad;user@vm1"])
    assert result.exit_code == 2
    assert "invalid user in 'bad;user@vm1'" in result.stderr


def test_config_json_is_one_document_with_sources(cli: Invoke, tmp_path: Path) -> None:
    (tmp_path / "etc-stagingvm-config.toml").write_text("memory = 1024\n[network]\nname = 'n1'\n")
    user = tmp_path / "home" / ".config" / "stagingvm" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text("vcpus = 3\nmemory = 1536\n")
    result = cli(
        ["--uri", "test:///default", "--data-dir", str(tmp_path / "d"), "config", "--json"],
        env={"STAGINGVM_TIMEOUTS_LEASE": "99", "STAGINGVM_URI": "qemu:///env"},
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)  # exactly one document, nothing else on stdout
    s = doc["settings"]
    assert set(s) == {spec.key for spec in KEYS}
    assert (s["uri"]["value"], s["uri"]["source"], s["uri"]["detail"]) == (
        "test:///default",
        "flag",
        "--uri",
    )
    assert (s["data_dir"]["value"], s["data_dir"]["source"]) == (str(tmp_path / "d"), "flag")
    assert (s["timeouts.lease"]["value"], s["timeouts.lease"]["source"]) == (99.0, "environment")
    assert (s["memory"]["value"], s["memory"]["detail"]) == (1536, f"{user}:2")
    assert (s["vcpus"]["value"], s["vcpus"]["source"]) == (3, "user file")
    assert (s["network.name"]["value"], s["network.name"]["source"]) == ("n1", "system file")
    assert (s["pool_name"]["source"], s["pool_name"]["detail"]) == ("default", None)
    assert doc["files"] == [str(tmp_path / "etc-stagingvm-config.toml"), str(user)]
    assert doc["searched"] == doc["files"]


def test_config_says_where_it_looked(cli: Invoke, tmp_path: Path) -> None:
    result = cli(["config"])
    assert result.exit_code == 0
    home_file = tmp_path / "home" / ".config" / "stagingvm" / "config.toml"
    assert (
        f"config files read: none (looked for {tmp_path / 'etc-stagingvm-config.toml'}, "
        f"{home_file})"
    ) in result.stderr


def test_config_table_on_stdout_messages_on_stderr(cli: Invoke, tmp_path: Path) -> None:
    explicit = tmp_path / "ci.toml"
    explicit.write_text("vcpus = 7\n")
    result = cli(["--config", str(explicit), "config"])
    assert result.exit_code == 0, result.output
    assert "config files read: " + str(explicit) in result.stderr
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("vcpus"))
    assert line.split()[:3] == ["vcpus", "7", "config"]
    assert f"{explicit}:1" in line
    assert "KEY" in result.stdout and "SOURCE" in result.stdout


def test_quiet_config_prints_only_data(cli: Invoke) -> None:
    result = cli(["-q", "config"])
    assert result.exit_code == 0
    assert result.stderr == ""
    assert "network.subnet" in result.stdout


def test_invalid_config_file_exit_2_with_key_and_line(cli: Invoke, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("# ok\n[network]\nsubnet = '10.0.0.0/24'\ndhcp_strat = '10.0.0.5'\n")
    result = cli(["--config", str(bad), "config"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: {bad}:4: unknown key 'network.dhcp_strat'",
        "hint: did you mean 'network.dhcp_start'?",
    ]
    assert result.stdout == ""


def test_invalid_environment_exit_2(cli: Invoke) -> None:
    result = cli(["config"], env={"STAGINGVM_VCPUS": "many"})
    assert result.exit_code == 2
    assert "error: STAGINGVM_VCPUS: vcpus: 'many' is not an integer" in result.stderr


def test_config_typo_warning_on_stderr(cli: Invoke) -> None:
    result = cli(["config", "--json"], env={"STAGINGVM_MEMROY": "4096"})
    assert result.exit_code == 0
    assert "warning: STAGINGVM_MEMROY is not a setting; did you mean STAGINGVM_MEMORY?" in (
        result.stderr
    )
    assert json.loads(result.stdout)["warnings"]


def test_missing_explicit_config_exit_2(cli: Invoke, tmp_path: Path) -> None:
    result = cli(["config"], env={"STAGINGVM_CONFIG": str(tmp_path / "nope.toml")})
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_build_needs_target_or_image(cli: Invoke, tmp_path: Path) -> None:
    neither = cli(["--uri", NOWHERE, "build"])
    assert neither.exit_code == 2
    assert "nothing to build" in neither.stderr
    both = cli(["--uri", NOWHERE, "build", ".#host", "--image", "/dev/null"])
    assert both.exit_code == 2
    assert "not several" in both.stderr
    image_and_recipe = cli(["--uri", NOWHERE, "build", "--image", "/dev/null", "--recipe", "tiny"])
    assert image_and_recipe.exit_code == 2
    nix_opt_without_target = cli(
        ["--uri", NOWHERE, "build", "--image", "/dev/null", "--name", "b", "--nix-option", "a=b"]
    )
    assert nix_opt_without_target.exit_code == 2
    assert "only to a nix TARGET" in nix_opt_without_target.stderr
    unknown_recipe = cli(["--uri", NOWHERE, "build", "--recipe", "no-such-recipe"])
    assert unknown_recipe.exit_code == 3
    assert "no image recipe named 'no-such-recipe'" in unknown_recipe.stderr
    no_name = cli(["--uri", NOWHERE, "build", "--image", "/dev/null"])
    assert no_name.exit_code == 2
    assert "--image needs --name" in no_name.stderr
    missing = cli(["--uri", NOWHERE, "build", "--image", str(tmp_path / "x.qcow2"), "--name", "b"])
    assert missing.exit_code == 3
    assert "does not exist" in missing.stderr


def test_console_log_missing_is_not_found(cli: Invoke, tmp_path: Path) -> None:
    result = cli(["--data-dir", str(tmp_path / "d"), "console", "vm1", "--log"])
    assert result.exit_code == 3
    assert "no console log for vm1" in result.stderr


def test_console_log_goes_to_stdout(cli: Invoke, tmp_path: Path) -> None:
    log = tmp_path / "d" / "vms" / "vm1" / "console.log"
    log.parent.mkdir(parents=True)
    log.write_bytes(b"[    0.000000] Linux version\nlogin: \xff\n")
    result = cli(["--data-dir", str(tmp_path / "d"), "console", "vm1", "--log"])
    assert result.exit_code == 0
    assert result.stdout_bytes == b"[    0.000000] Linux version\nlogin: \xff\n"
    assert result.stderr == ""


def _raise_in_settings(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    """Make loading settings fail with *exc*: the way to reach the bug and Ctrl-C paths."""

    def boom(self: CliState) -> None:
        raise exc

    monkeypatch.setattr(CliState, "loaded", boom)


def test_unexpected_error_is_reported_as_a_bug(
    cli: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    _raise_in_settings(monkeypatch, ZeroDivisionError("division by zero"))
    result = cli(["config"])
    assert result.exit_code == 1
    assert "error: unexpected ZeroDivisionError: division by zero" in result.stderr
    assert "this is a bug" in result.stderr
    assert "Traceback" not in result.stderr
    debug = cli(["--debug", "config"])
    assert debug.exit_code == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "this is a bug" in debug.stderr


def test_ctrl_c_exits_130(cli: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    _raise_in_settings(monkeypatch, KeyboardInterrupt())
    result = cli(["config"])
    assert result.exit_code == 130
    assert "interrupted" in result.stderr


def test_debug_logging_lasts_one_invocation(cli: Invoke) -> None:
    import logging

    logger = logging.getLogger("stagingvm")
    handlers, level = list(logger.handlers), logger.level
    assert cli(["--debug", "config", "--json"]).exit_code == 0
    assert logger.handlers == handlers
    assert logger.level == level


def test_sigterm_interrupts_like_ctrl_c(tmp_path: Path) -> None:
    """A cancelled CI job (SIGTERM) ends a command through the Ctrl-C path: exit 130.

    The command blocks for real: `console --log` opening a FIFO nobody writes to.
    """
    import os
    import signal
    import subprocess
    import time

    log = tmp_path / "data" / "vms" / "vm1" / "console.log"
    log.parent.mkdir(parents=True)
    os.mkfifo(log)
    root = Path(__file__).resolve().parents[3]
    proc = subprocess.Popen(
        [sys.executable, "-c", "from stagingvm.cli.app import main; main()",
         "--data-dir", str(tmp_path / "data"), "console", "vm1", "--log"],
        cwd=root,
        env={"PYTHONPATH": str(root), "HOME": str(tmp_path), "PATH": os.environ["PATH"]},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wchan = Path(f"/proc/{proc.pid}/wchan")
        deadline = time.monotonic() + 30
        # Linux names the wait in open(2) of a FIFO without writer "wait_for_partner".
        while wchan.read_text() != "wait_for_partner" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert wchan.read_text() == "wait_for_partner", "the CLI never blocked on the FIFO"
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert err.decode().strip() == "interrupted by SIGTERM"
