#!/usr/bin/env python3
"""Write docs/cli.md from the ``--help`` of every ``pr-test-vm`` command.

The output is deterministic (fixed 80-column width, no colour, commands in registration
order) so that tests/unit/cli/test_docs.py can fail when docs/cli.md is stale.

    python scripts/gen_cli_docs.py           # rewrite docs/cli.md
    python scripts/gen_cli_docs.py --check   # exit 1 if docs/cli.md is stale
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "cli.md"
WIDTH = 80
REGENERATE = "python scripts/gen_cli_docs.py"


def _help(args: list[str]) -> str:
    from typer.testing import CliRunner

    from stagingvm.cli.app import PROG, get_app

    runner = CliRunner()
    result = runner.invoke(
        get_app(),
        [*args, "--help"],
        prog_name=PROG,
        terminal_width=WIDTH,
        color=False,
        env={"NO_COLOR": "1", "COLUMNS": str(WIDTH)},
    )
    if result.exit_code != 0:
        raise SystemExit(f"`{PROG} {' '.join(args)} --help` failed:\n{result.output}")
    return result.stdout.rstrip() + "\n"


def exit_code_rows() -> list[tuple[str, str]]:
    """The exit code table of ``stagingvm.errors``' docstring: the one source of truth."""
    from stagingvm import errors

    doc = errors.__doc__ or ""
    rows = []
    for line in doc.splitlines():
        match = re.fullmatch(r"(\d+)\s{2,}(.+)", line.strip())
        if match:
            rows.append((match.group(1), match.group(2).strip()))
    if not rows:
        raise SystemExit("no exit code table found in stagingvm/errors.py")
    return rows


def command_paths() -> list[list[str]]:
    """Every command and sub-command, in the order ``--help`` lists them (groups included)."""
    import typer.main

    from stagingvm.cli.app import get_app

    paths: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            if getattr(sub, "hidden", False):
                continue
            paths.append([*path, name])
            walk(sub, [*path, name])

    walk(typer.main.get_command(get_app()), [])
    return paths


def render() -> str:
    from stagingvm.cli.app import PROG

    paths = command_paths()

    def anchor(path: list[str]) -> str:
        return "-".join([PROG, *path])

    parts = [
        f"# `{PROG}` command reference\n",
        f"<!-- Generated from --help; do not edit. Regenerate: `{REGENERATE}` -->\n",
        "Every command accepts the global options shown under "
        f"[`{PROG}`](#{PROG}), before or after the command name: "
        f"`{PROG} --uri test:///default list` or `{PROG} list --uri test:///default` "
        f"(nothing after `ssh NAME` or `--` is taken). `LIBVIRT_DEFAULT_URI` is honoured, "
        "below `STAGINGVM_URI`. Settings and their sources are described in "
        "[configuration.md](configuration.md). The same reference is the man page "
        f"`man {PROG}` (`man/{PROG}.1`, made by `python scripts/gen_man_page.py`), which "
        "`pip install` and the Nix package install.\n",
        "## Terminals and shells\n",
        "On a terminal, tables fit its width without cutting a cell: `list` drops BASE, AGE, "
        "MEMORY and VCPUS (in that order) before it would cut NAME, STATE or IP, and prints "
        "plain columns when even those do not fit. Piped, output is plain columns. "
        "`NO_COLOR=1` (or `TERM=dumb`) prints no escape sequence at all: no colour, no bold, "
        "no spinner (phases are plain lines). The upload of a base image (`build`, `start "
        "--image`, `test`) shows a bar with bytes done/total, percent, rate and time left on "
        "a terminal; with `-v` off one, a line at each tenth crossed. Usage mistakes print "
        "`error:` and `hint:` lines "
        "and exit 2.\n",
        "Shell completion (Typer's) completes verbs, options, VM names and base names; names "
        "come from the data dir, without connecting to libvirt. "
        f"`{PROG} --install-completion` installs it for the running shell; "
        f"`_PR_TEST_VM_COMPLETE=source_bash {PROG}` (or `source_zsh`, `source_fish`) prints "
        "the script for one shell. The Nix package installs all three.\n",
        "## Commands\n",
        "\n".join(
            f"{'  ' * (len(path) - 1)}- [`{' '.join(path)}`](#{anchor(path)})" for path in paths
        )
        + "\n",
        "## Exit codes\n",
        "Errors print one line starting with `error:` on stderr, then a `hint:` line when "
        "there is something to do about it. Data goes to stdout, messages to stderr. "
        "Ctrl-C and SIGTERM (a cancelled CI job) stop a command the same way: what it made "
        "so far is cleaned up (a second signal only says that clean-up is under way), and "
        "the exit code is 130. Each command's section below ends with the codes that "
        "command can exit with (one table in `stagingvm/cli/exitcodes.py`, which its "
        "`--help` shows too and a test holds to what the command really returns); "
        "`N` is a status that is not ours: the remote command's (`ssh`) or the job's "
        "(`lab exec`).\n",
        "| code | meaning |\n| ---: | --- |\n"
        + "".join(f"| {code} | {text.replace('|', '/')} |\n" for code, text in exit_code_rows()),
        f"## {PROG}\n",
        "```text\n" + _help([]) + "```\n",
    ]
    for path in paths:
        parts.append(f"## {PROG} {' '.join(path)}\n")
        parts.append("```text\n" + _help(path) + "```\n")
    return "\n".join(parts)


def write_or_check(
    target: Path, render_text: Callable[[], str], regenerate: str, doc: str | None
) -> int:
    """The command line of a generator: rewrite *target*, or with --check exit 1 if stale."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    parser.add_argument("--check", action="store_true", help=f"fail if {target.name} is stale")
    args = parser.parse_args()
    os.environ["NO_COLOR"] = "1"
    sys.path.insert(0, str(ROOT))
    text = render_text()
    name = target.relative_to(ROOT)
    if args.check:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != text:
            print(f"{name} is stale: run `{regenerate}`", file=sys.stderr)
            return 1
        return 0
    target.parent.mkdir(exist_ok=True)
    target.write_text(text, encoding="utf-8")
    print(f"wrote {name}")
    return 0


def main() -> int:
    return write_or_check(DOC, render, REGENERATE, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
