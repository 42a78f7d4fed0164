"""What the CLI loads: --help stays light, and plain options skip Typer's Pydantic path.

Speed itself is measured by benchmarks/cli_speed.py; these tests check the causes (which
modules get imported), which do not depend on how busy the machine is.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from stagingvm.cli import fastparams

ROOT = Path(__file__).resolve().parents[3]
HEAVY = ("libvirt", "paramiko", "rich", "pydantic", "stagingvm.vm.manager", "stagingvm.config.load")


def loaded_after(args: list[str]) -> set[str]:
    """Top-level and stagingvm modules a fresh `pr-test-vm ARGS` process has imported."""
    probe = (
        "import sys\nfrom stagingvm.cli.app import main\n"
        f"sys.argv = ['pr-test-vm', *{args!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('\\n'.join(sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "HOME": "/nonexistent", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(done.stderr.split())


def test_help_imports_nothing_heavy() -> None:
    modules = loaded_after(["--help"])
    assert "stagingvm.cli.app" in modules
    assert "rich.table" not in modules
    for heavy in HEAVY:
        assert heavy not in modules, heavy


def test_start_parses_without_pydantic() -> None:
    # Fails at the name check, after every option was converted.
    modules = loaded_after(["start", "BAD", "--memory", "512", "--vcpus", "2", "--no-wait"])
    assert "pydantic" not in modules


def test_command_help_imports_nothing_heavy() -> None:
    modules = loaded_after(["start", "--help"])
    for heavy in HEAVY:
        assert heavy not in modules, heavy


def test_config_json_skips_pydantic_and_libvirt() -> None:
    modules = loaded_after(["--uri", "test:///default", "config", "--json"])
    assert "stagingvm.config.load" in modules
    for heavy in ("libvirt", "paramiko", "pydantic", "rich.table"):
        assert heavy not in modules, heavy


def test_list_loads_only_what_listing_needs(tmp_path: Path) -> None:
    """An empty `list` (piped) draws nothing with Rich and loads no start, SSH or image code."""
    modules = loaded_after(["list", "--uri", "test:///default", "--data-dir", str(tmp_path / "d")])
    assert "libvirt" in modules and "stagingvm.vm.info" in modules
    for heavy in ("rich", "paramiko", "pydantic", "stagingvm.vm.start", "stagingvm.vm.readiness",
                  "stagingvm.virt.bases", "stagingvm.ssh.keys", "stagingvm.virt.accel",
                  "stagingvm.cli.ci_env"):  # fmt: skip
        assert heavy not in modules, heavy


def test_plain_converter_converts_and_rejects() -> None:
    app = typer.Typer(add_completion=False)

    @app.command()
    def run(count: Annotated[int, typer.Option()] = 1, names: list[str] | None = None) -> None:
        typer.echo(f"{count + 1} {names}")

    command = typer.main.get_command(app)
    installed = fastparams.install(command, ["--help"])
    assert installed == 3  # count, names and --help

    ctx = command.make_context("run", ["--count", "41", "--names", "a", "--names", "b"])
    assert ctx.params == {"count": 41, "names": ["a", "b"]}
    try:
        command.make_context("run", ["--count", "many"])
    except Exception as exc:  # a usage error, as Typer's own conversion gives
        assert "'many' is not a valid int" in str(exc)
        assert getattr(exc, "exit_code", None) == 2
    else:
        raise AssertionError("--count many was accepted")
    assert type(command.params[0]._runtime_param).__name__ == "PlainRuntimeParam"  # type: ignore[attr-defined]


def test_list_json_does_not_load_rich(tmp_path: Path) -> None:
    world = tmp_path / "world.xml"
    world.write_text((ROOT / "tests" / "testdriver.xml").read_text())
    args = ["--uri", f"test://{world}", "--data-dir", str(tmp_path / "d"), "list", "--json"]
    modules = loaded_after(args)
    assert "stagingvm.vm.manager" in modules  # it really listed
    for heavy in ("rich", "pydantic", "paramiko"):
        assert heavy not in modules, heavy
