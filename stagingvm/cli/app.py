"""The ``pr-test-vm`` command: global options, command registration, errors -> exit codes.

Each command group lives in its own ``cmd_*.py`` module with a ``register(app)`` function;
``COMMAND_MODULES`` lists them in the order ``--help`` shows them. This module is what
``--help`` loads, so it imports nothing heavy: no libvirt, no paramiko, no Rich.

``_StagingVMGroup.invoke`` is the one place where exceptions become exit codes: a
``StagingVMError`` gives one "error:" line, its hint and (for waits) the phase, the time
spent and the last console lines; Ctrl-C gives 130; anything else is a bug (exit 1, traceback
only with ``--debug``).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from stagingvm import __version__
from stagingvm.cli import exitcodes, fastparams, globalopts, signals
from stagingvm.cli.output import Output
from stagingvm.cli.state import CliState
from stagingvm.errors import (
    EXIT_INTERRUPTED,
    BuildError,
    GuestFailedError,
    StagingVMError,
    WaitTimeoutError,
)

PROG = "pr-test-vm"
# Click's UsageError, whether Typer vendors Click (>= 0.26) or uses the real one.
UsageError: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError"
)

COMMAND_MODULES: list[str] = [
    "stagingvm.cli.cmd_build",
    "stagingvm.cli.cmd_lifecycle",
    "stagingvm.cli.cmd_snapshot",
    "stagingvm.cli.cmd_access",
    "stagingvm.cli.cmd_sshconfig",
    "stagingvm.cli.cmd_info",
    "stagingvm.cli.cmd_config",
    "stagingvm.cli.cmd_check",
    "stagingvm.cli.cmd_policy",
    "stagingvm.cli.cmd_setup",
    "stagingvm.cli.cmd_test",
    "stagingvm.cli.cmd_lab",
    "stagingvm.cli.cmd_image",
    "stagingvm.cli.cmd_gc",
    "stagingvm.cli.cmd_help",
]

HELP_OPTION_NAMES = ["-h", "--help"]
CONTEXT_SETTINGS: dict[str, Any] = {
    "help_option_names": HELP_OPTION_NAMES,
    "max_content_width": 100,
}


def _is_cli_control(exc: BaseException) -> bool:
    """Typer/Click's own exceptions (usage errors, Exit, Abort) keep their meaning."""
    return type(exc).__module__.split(".")[0] in ("typer", "click")


def _state_of(ctx: Any) -> CliState | None:
    obj = getattr(ctx, "obj", None)
    return obj if isinstance(obj, CliState) else None


def report_error(out: Output, exc: StagingVMError) -> None:
    """One clear line, then what helps: phase and time for waits, console or log tail, hint."""
    out.error(exc.message)
    if isinstance(exc, WaitTimeoutError | GuestFailedError):
        out.field("phase", exc.phase)
        out.field("time spent", f"{exc.elapsed:.1f} s")
        if exc.console_tail:
            out.detail(f"last {len(exc.console_tail)} console lines", exc.console_tail)
    if isinstance(exc, BuildError) and exc.log_tail:
        out.detail(f"last {len(exc.log_tail)} log lines", exc.log_tail)
    if exc.hint:
        out.hint(exc.hint)


def _usage_error(exc: Exception) -> Exception:
    """*exc*, shown in the documented form: ``error:`` line, ``hint:`` line, exit 2."""
    ctx: Any = getattr(exc, "ctx", None)
    command_path = ctx.command_path if ctx is not None else PROG

    def show(file: Any = None) -> None:
        out = Output()
        out.error(getattr(exc, "format_message", exc.__str__)())
        out.hint(f"see `{command_path} --help`")

    exc.show = show  # type: ignore[attr-defined]
    return exc


class _StagingVMGroup(TyperGroup):
    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        # No Pydantic import just to read a string option (see fastparams).
        fastparams.install(self, HELP_OPTION_NAMES)
        self._completion_params_fast = False

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not self._completion_params_fast:
            # Typer appends --install/--show-completion after __init__: plain converters too.
            fastparams.install(self, HELP_OPTION_NAMES)
            self._completion_params_fast = True
        try:
            return super().parse_args(ctx, globalopts.hoist(self, ctx, args))
        except UsageError as exc:
            raise _usage_error(exc) from None

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            raise _usage_error(exc) from None
        except StagingVMError as exc:
            state = _state_of(ctx)
            out = state.out if state else Output()
            if state is not None and state.debug:
                traceback.print_exc(file=sys.stderr)
            report_error(out, exc)
            raise typer.Exit(exc.exit_code) from exc
        except KeyboardInterrupt as exc:
            by = f" by {exc.args[0]}" if exc.args else ""
            sys.stderr.write(f"\ninterrupted{by}\n")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except BrokenPipeError:
            # stdout closed early (`pr-test-vm list | head`): not an error of ours. Point
            # stdout at /dev/null so Python's final flush does not complain about it again.
            with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        except Exception as exc:
            if _is_cli_control(exc):
                raise
            state = _state_of(ctx)
            out = state.out if state else Output()
            if state is not None and state.debug:
                traceback.print_exc(file=sys.stderr)
            out.error(f"unexpected {type(exc).__name__}: {exc}")
            out.hint(
                "this is a bug in stagingvm: please report it with the output of "
                f"`{PROG} --debug ...`"
                if state is None or not state.debug
                else "this is a bug in stagingvm: please report it with the traceback above"
            )
            raise typer.Exit(1) from exc


class _StderrHandler(logging.Handler):
    """Writes to whatever sys.stderr is at the time (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # a log line must never break the command
            self.handleError(record)


def _log_to_stderr(ctx: typer.Context) -> None:
    """With --debug, the library's log records (``stagingvm.*``) go to stderr.

    Only for this invocation: the handler goes again when the command ends.
    """
    logger = logging.getLogger("stagingvm")
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("debug: %(name)s: %(message)s"))
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)

    def stop() -> None:
        logger.removeHandler(handler)
        logger.setLevel(old_level)

    ctx.call_on_close(stop)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"{PROG} {__version__}")
        raise typer.Exit(0)


def _root(
    ctx: typer.Context,
    uri: Annotated[
        list[str] | None,
        typer.Option(
            "--uri",
            metavar="URI",
            help="libvirt URI [default: qemu:///system]; more than once: several hosts "
            "(start/test pick the one with the most free memory).",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", metavar="DIR", help="stagingvm's state directory (keys, logs, caches)."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="FILE",
            help="Read this config file instead of the user's (also STAGINGVM_CONFIG).",
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks on errors and the library's log.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="Only errors and data; no progress.")
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "-v",
            "--verbose",
            help="Off a terminal too, log each phase (start, and end with its duration).",
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Boot a PR's NixOS configuration in a throwaway libvirt VM and check it.

    Settings come from /etc/stagingvm/config.toml, then ~/.config/stagingvm/config.toml,
    then LIBVIRT_DEFAULT_URI and STAGINGVM_* variables, then these options (before or
    after the verb). The config command shows the result.

    Example:

    \b
      pr-test-vm start pr-42 --base hermes && pr-test-vm ssh pr-42 -- uptime
    """
    if debug:
        _log_to_stderr(ctx)
    locations = None
    if ctx.obj is not None:  # tests seed ConfigLocations so they never read the real /etc
        from stagingvm.config.load import ConfigLocations

        locations = ctx.obj if isinstance(ctx.obj, ConfigLocations) else None
    ctx.obj = CliState(
        uri=uri,
        data_dir=data_dir,
        config=config,
        debug=debug,
        quiet=quiet,
        locations=locations,
        out=Output(quiet=quiet, verbose=verbose),
    )


# The root options that take a value (a test holds this to the root's parameters): what
# ``_verb`` must skip to find the verb. Any other word before the verb is a flag.
VALUE_OPTIONS = frozenset({"--uri", "--data-dir", "--config"})
# Root options that print something about every command: they need the whole tree.
WHOLE_TREE_OPTIONS = frozenset({"-h", "--help", "--version", "--install-completion",
                                "--show-completion"})  # fmt: skip
COMPLETE_VAR = "_PR_TEST_VM_COMPLETE"


def _verb(args: list[str]) -> str | None:
    """The verb of the command line *args*, or None when the whole tree is wanted (root
    help, version, completion, no verb at all)."""
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "--":
        opt = args[i].split("=", 1)[0]
        if opt in WHOLE_TREE_OPTIONS:
            return None
        i += 2 if opt in VALUE_OPTIONS and "=" not in args[i] else 1
    return args[i] if i < len(args) else None


@functools.cache
def get_app(only: str | None = None) -> typer.Typer:
    """Build the Typer app with every command module registered (once per process).

    With *only* (a verb, ``"lab"`` for a group), the app keeps just that command: Typer reads
    the signature and type hints of every command it is given to build its tree, which costs
    more CPU than ``list`` itself, and running one verb needs only that verb's. An *only*
    that is no verb keeps them all (Click's "No such command" then suggests the right one).
    """
    app = typer.Typer(
        name=PROG,
        cls=_StagingVMGroup,
        add_completion=True,
        no_args_is_help=True,
        rich_markup_mode=None,  # plain Click help: fast, and deterministic for docs/cli.md
        pretty_exceptions_enable=False,
        context_settings=CONTEXT_SETTINGS,
    )
    app.callback()(_root)
    for dotted in COMMAND_MODULES:
        importlib.import_module(dotted).register(app)
    if only is not None:
        commands = [c for c in app.registered_commands if c.name == only]
        groups = [g for g in app.registered_groups if g.typer_instance.info.name == only]  # type: ignore[union-attr]
        if commands or groups:
            app.registered_commands, app.registered_groups = commands, groups
    _add_exit_codes(app, [])
    return app


def _add_exit_codes(app: typer.Typer, path: list[str]) -> None:
    """Each verb's help ends with its exit codes, from the one table in ``exitcodes``."""
    for info in app.registered_commands:
        assert info.name is not None  # every command is registered by name
        info.epilog = exitcodes.epilog(" ".join([*path, info.name]))
    for group in app.registered_groups:
        sub = group.typer_instance
        assert sub is not None and sub.info.name is not None
        _add_exit_codes(sub, [*path, sub.info.name])


def main() -> None:
    """Entry point of the ``pr-test-vm`` console script."""
    verb = None if COMPLETE_VAR in os.environ else _verb(sys.argv[1:])
    with signals.interrupt_once():
        get_app(verb)(prog_name=PROG)
