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

from stagingvm.cli import complete
from stagingvm.cli.policyopts import PolicyRef, load_chosen_policy
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
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME", help="Running VM to check.", autocompletion=complete.vm_names
        ),
    ],
    policy: Annotated[
        str, typer.Option("--policy", metavar="FILE", help="Policy file, or builtin:NAME.")
    ] = "builtin:ai-worker",
    policy_ref: PolicyRef = None,
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
    reset: Annotated[
        bool,
        typer.Option(
            "--reset",
            help="Revert the VM to its snapshot `ready` first (see `pr-test-vm snapshot`); "
            "the run's fresh nonces are planted after the revert.",
        ),
    ] = False,
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
    and each is judged by what the oracles saw, never by exit codes alone. Interrupted,
    the reports still get what was found until then.

    Example:

    \b
      pr-test-vm check lab-b --policy builtin:ai-worker --junit report.xml
      pr-test-vm check lab-b --family sudo-wildcards --family secrets --keep-oracles
      pr-test-vm check lab-b --reset      # back to snapshot `ready`, then check
      pr-test-vm check lab-b --policy-ref origin/main:ci/policy.toml
    """
    validate_name(name)
    from stagingvm.boundedread import check_output_path

    for path, what in ((junit, "--junit"), (markdown, "--markdown")):
        if path is not None:
            check_output_path(path, what)
    from stagingvm.checks import access
    from stagingvm.checks.verdict import raise_for_verdict
    from stagingvm.checks.vmcheck import check_vm, only_families

    state = cli_state(ctx)
    loaded = load_chosen_policy(state.out, policy, policy_ref)
    if families:
        loaded = only_families(loaded, families)
    manager = state.manager_for(name)
    own_key = access.user_key_path(state.settings, loaded.user.name)
    if not own_key.exists():
        state.out.warn(f"no key of {loaded.user.name}'s own at {own_key}: using stagingvm's key")
    from stagingvm.checks.model import CheckReport

    if reset:
        from stagingvm.vm import snapshots

        snapshots.revert(manager, name, snapshots.READY)
    # Filled in place: on Ctrl-C the reports still get what was found so far.
    report = CheckReport(
        vm=name, policy=loaded.source, user=loaded.user.name, policy_sha256=loaded.sha256
    )
    try:
        check_vm(
            manager,
            manager.settings,
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

    for path, render in ((junit, to_junit), (markdown, to_markdown)):
        if path is None:
            continue
        try:
            path.write_text(render(report), encoding="utf-8")
        except OSError as exc:  # shown; the verdict's exit code stays
            out.error(f"could not write the report {path}: {exc}")
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
    from stagingvm.escaping import term

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
            Text(term(p.promise_id)),
            p.kind,
            Text(term(f"{state[0]}: {p.observed}"), style=state[1]),
            Text(term("; ".join(p.evidence[:2])[:300])),
        )
    family = None
    for r in report.probes:
        if r.family != family:
            table.add_section()
            family = r.family
        table.add_row(
            Text(r.family),
            Text(r.probe_id),
            Text(term(r.expected)),
            Text(term(f"{r.outcome}: {r.observed}"), style=_STYLE.get(str(r.outcome), "")),
            Text(term("; ".join(r.evidence[:2])[:300])),
        )
    console = out.stdout_console()
    from stagingvm.checks.target.facts import summary_lines

    for line in summary_lines(report.target):
        console.print(Text(term(f"target: {line}"), style="dim"))
    console.print(table)
    for line in report.infrastructure:
        out.warn(line)
    console.print(Text(term(verdict_line(report)), style="bold"))
    out.info(f"policy: {term(report.policy)} (sha256 {report.policy_sha256 or 'unknown'})")
    out.data(summary_line(report))


def register(app: typer.Typer) -> None:
    app.command("check")(check)
