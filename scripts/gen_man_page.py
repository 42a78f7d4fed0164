#!/usr/bin/env python3
"""Write man/pr-test-vm.1 (roff, man macros) from the same Typer/click tree as ``--help``.

Every command's usage, text, arguments and options come from the click objects ``--help``
formats; its exit codes from ``stagingvm.cli.exitcodes``; the exit status table from
``stagingvm.errors`` (as docs/cli.md); the environment from ``stagingvm.config.keys``. The
output is deterministic (no date), so tests/unit/cli/test_docs.py can fail when the page is
stale. The wheel installs it as share/man/man1/pr-test-vm.1; so does nix/package.nix.

    python scripts/gen_man_page.py           # rewrite man/pr-test-vm.1
    python scripts/gen_man_page.py --check   # exit 1 if man/pr-test-vm.1 is stale
"""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "man" / "pr-test-vm.1"
REGENERATE = "python scripts/gen_man_page.py"


def _cli_docs() -> ModuleType:
    """scripts/gen_cli_docs.py: the command walk and the exit status table are its."""
    spec = importlib.util.spec_from_file_location("gen_cli_docs", ROOT / "scripts/gen_cli_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def esc(text: str) -> str:
    """*text* as roff text: backslashes and hyphens escaped (``\\-`` copies as ``-``), no
    line taken for a request."""
    out = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(
        "\\&" + line if line.startswith((".", "'")) else line for line in out.splitlines()
    )


def _paragraphs(help_text: str) -> list[str]:
    """Click's help paragraphs: a ``\\b`` block is kept line by line, the rest is filled."""
    out: list[str] = []
    for block in inspect.cleandoc(help_text).split("\n\n"):
        if block.startswith("\b\n"):
            lines = [line.rstrip() for line in block[2:].splitlines()]
            out += [".PP", ".RS 2", ".nf", *(esc(line) for line in lines), ".fi", ".RE"]
        elif block.strip():
            out += [".PP", esc(" ".join(block.split()))]
    return out


def _params(command: Any, ctx: Any) -> list[str]:
    out: list[str] = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None or getattr(param, "hidden", False):
            continue
        names, text = record
        out += [".TP", f"\\fB{esc(names)}\\fR", esc(" ".join(text.split())) or "\\&"]
    return out


def _exit_codes(verb: str) -> list[str]:
    from stagingvm.cli import exitcodes

    out = [".PP", "Exit codes:", ".RS 2", ".PD 0"]
    for code in exitcodes.codes_of(verb):
        out += [".TP 6", f"\\fB{esc(exitcodes.label(code.code))}\\fR", esc(code.when)]
    return [*out, ".PD", ".RE"]


def _environment() -> list[str]:
    from stagingvm.config.keys import KEYS, env_var_for
    from stagingvm.config.load import CONFIG_ENV_VAR, LIBVIRT_URI_ENV_VAR

    out = [
        ".TP", f"\\fB{CONFIG_ENV_VAR}\\fR", "Read this config file instead of the user's.",
        ".TP", f"\\fB{LIBVIRT_URI_ENV_VAR}\\fR",
        esc("The libvirt URI, as virsh reads it; below STAGINGVM_URI and --uri."),
    ]  # fmt: skip
    for spec in KEYS:
        out += [".TP", f"\\fB{esc(env_var_for(spec.key))}\\fR", esc(f"{spec.doc} ({spec.key})")]
    out += [
        ".TP", "\\fBNO_COLOR\\fR", esc("Set: no colour, no bold, no spinner (also TERM=dumb)."),
    ]  # fmt: skip
    return out


def render() -> str:
    import typer.main

    from stagingvm import __version__
    from stagingvm.cli.app import PROG, get_app

    gen = _cli_docs()
    root = typer.main.get_command(get_app())
    ctx = root.make_context(PROG, [], resilient_parsing=True)
    summary = (root.help or "").strip().splitlines()[0].rstrip(".")
    lines = [
        "'\\\" t",  # man(1): run tbl (the exit status table)
        f'.\\" Generated from the {PROG} command tree; do not edit. Regenerate: {REGENERATE}',
        f'.TH PR\\-TEST\\-VM 1 "" "stagingvm {__version__}" "User Commands"',
        ".nh",  # no hyphenation: paths and option names are copied as they are
        ".ad l",
        ".SH NAME",
        f"{esc(PROG)} \\- {esc(summary[0].lower() + summary[1:])}",
        ".SH SYNOPSIS",
        f".B {esc(PROG)}",
        "[\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]...",
        ".SH DESCRIPTION",
        *_paragraphs((root.help or "").split("\n\n", 1)[1]),  # the first line is NAME's
        ".PP",
        esc(
            f"`{PROG} help TOPIC` prints the longer pages (Markdown) that come with the "
            f"package; `{PROG} help` lists them."
        ),
        ".SH OPTIONS",
        esc("Global options; they go before or after the command name."),
        *_params(root, ctx),
        ".SH COMMANDS",
    ]
    for path in gen.command_paths():
        command, sub_ctx = root, ctx
        for name in path:
            command = command.commands[name]
            sub_ctx = command.make_context(name, [], parent=sub_ctx, resilient_parsing=True)
        if getattr(command, "commands", None):
            continue  # a group: its commands follow
        pieces = " ".join(command.collect_usage_pieces(sub_ctx))
        lines += [".SS", esc(f"{PROG} {' '.join(path)} {pieces}")]
        lines += _paragraphs(command.help or "")
        lines += _params(command, sub_ctx)
        lines += _exit_codes(" ".join(path))
    lines += [".SH EXIT STATUS", ".TS", "tab(|);", "r l."]
    lines += [f"{code}|{esc(text.replace('``', ''))}" for code, text in gen.exit_code_rows()]
    lines += [".TE", ".SH ENVIRONMENT", *_environment()]
    lines += [
        ".SH FILES",
        ".TP", "\\fI/etc/stagingvm/config.toml\\fR", "The system's settings.",
        ".TP", "\\fI~/.config/stagingvm/config.toml\\fR", "The user's settings, over the system's.",
        ".SH SEE ALSO",
        "\\fBvirsh\\fR(1), \\fBssh\\fR(1), \\fBssh_config\\fR(5), \\fBqemu\\-img\\fR(1)",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> int:
    return int(_cli_docs().write_or_check(PAGE, render, REGENERATE, __doc__))


if __name__ == "__main__":
    raise SystemExit(main())
