"""``check``: prove what the restricted user of a running VM can and cannot do.

Loads the policy first (a bad policy fails before anything touches the VM), logs in as root
and as the restricted user over two connections, runs ``stagingvm.checks.runner.run_check``,
prints the report (Rich table, or one JSON document with ``--json``), writes ``--junit`` and
``--markdown`` files, and exits 0 (held), 10 (violated) or 11 (could not check).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stagingvm.cli.state import cli_state
from stagingvm.names import validate_name

if TYPE_CHECKING:
    from stagingvm.checks.model import CheckReport
    from stagingvm.cli.output import Output

_STYLE = {
    "held": "green",
    "escaped": "bold red",
    "not-applicable": "dim",
    "error": "yellow",
    "control-failed": "bold yellow",
}


def check(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Running VM to check.")],
    policy: Annotated[
        str, typer.Option("--policy", metavar="FILE", help="Policy file, or builtin:NAME.")
    ] = "builtin:ai-worker",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    junit: Annotated[
        Path | None, typer.Option("--junit", metavar="FILE", help="Write a JUnit XML report.")
    ] = None,
    markdown: Annotated[
        Path | None,
        typer.Option("--markdown", metavar="FILE", help="Write a Markdown summary (PR comment)."),
    ] = None,
    families: Annotated[
        list[str] | None,
        typer.Option(
            "--family",
            metavar="FAMILY",
            help="Run only this probe family (repeatable); promises and controls always run.",
        ),
    ] = None,
    keep_oracles: Annotated[
        bool,
        typer.Option(
            "--keep-oracles",
            help="Leave root's oracles (marks, canaries, containers) in the guest to look at.",
        ),
    ] = False,
) -> None:
    """Run the restriction checks of a policy against a running VM.

    Root plants oracles (root-only marks, canaries with fresh nonces, a victim container);
    then every promise and escape probe runs as the policy's user over SSH with its own key,
    and each is judged by what the oracles saw, never by exit codes alone.
    Exit 0: everything held; 10: a restriction was violated; 11: could not check;
    130: interrupted (the reports still get what was found until then).

    Example:

    \b
      pr-test-vm check lab-b --policy builtin:ai-worker --junit report.xml
      pr-test-vm check lab-b --family sudo-wildcards --family secrets --keep-oracles
    """
    validate_name(name)
    from stagingvm.checks import access
    from stagingvm.checks.runner import raise_for_verdict
    from stagingvm.checks.vmcheck import check_vm, only_families
    from stagingvm.policy import load_policy

    loaded = load_policy(policy)
    if families:
        loaded = only_families(loaded, families)
    state = cli_state(ctx)
    manager = state.manager()
    own_key = access.user_key_path(state.settings, loaded.user.name)
    if not own_key.exists():
        state.out.warn(f"no key of {loaded.user.name}'s own at {own_key}: using stagingvm's key")
    from stagingvm.checks.model import CheckReport

    # Filled in place: on Ctrl-C the reports still get what was found so far.
    report = CheckReport(vm=name, policy=loaded.source, user=loaded.user.name)
    try:
        check_vm(
            manager,
            state.settings,
            loaded,
            name,
            progress=state.out.progress(),
            teardown=not keep_oracles,
            report=report,
        )
    except KeyboardInterrupt:
        _emit(state.out, report, as_json=as_json, junit=junit, markdown=markdown)
        raise
    _emit(state.out, report, as_json=as_json, junit=junit, markdown=markdown)
    raise_for_verdict(report)


def _emit(
    out: Output, report: CheckReport, *, as_json: bool, junit: Path | None, markdown: Path | None
) -> None:
    from stagingvm.checks.reports import summary_line, to_junit, to_markdown

    if junit is not None:
        junit.write_text(to_junit(report), encoding="utf-8")
    if markdown is not None:
        markdown.write_text(to_markdown(report), encoding="utf-8")
    if as_json:
        out.json(report.to_json())
        out.info(summary_line(report), always=True)
    else:
        print_report(out, report)


def print_report(out: Output, report: CheckReport) -> None:
    """The Rich table grouped by family, the verdict line, then ``N passed, N failed``."""
    from rich.table import Table
    from rich.text import Text

    from stagingvm.checks.reports import summary_line, verdict_line

    table = Table(title=f"restriction check of {report.vm}", show_lines=False, expand=False)
    for column, ratio in (
        ("family", None),
        ("check", None),
        ("expected", None),
        ("observed", 3),
        ("evidence", 3),
    ):
        table.add_column(column, ratio=ratio, overflow="fold")
    for p in report.promises:
        state = {
            True: ("kept", "green"),
            False: ("BROKEN", "bold red"),
            None: ("unknown", "yellow"),
        }[p.kept]
        table.add_row(
            "promise",
            Text(f"{p.promise_id}"),
            p.kind,
            Text(f"{state[0]}: {p.observed}", style=state[1]),
            Text("; ".join(p.evidence[:2])[:300]),
        )
    family = None
    for r in report.probes:
        if r.family != family:
            table.add_section()
            family = r.family
        table.add_row(
            r.family,
            r.probe_id,
            r.expected,
            Text(f"{r.outcome}: {r.observed}", style=_STYLE.get(str(r.outcome), "")),
            Text("; ".join(r.evidence[:2])[:300]),
        )
    console = out.stdout_console()
    from stagingvm.checks.target.facts import summary_lines

    for line in summary_lines(report.target):
        console.print(Text(f"target: {line}", style="dim"))
    console.print(table)
    for line in report.infrastructure:
        out.warn(line)
    console.print(Text(verdict_line(report), style="bold"))
    out.data(summary_line(report))


def register(app: typer.Typer) -> None:
    app.command("check")(check)
