"""Run-level reports of ``pr-test-vm test``: what CI shows when no check report exists.

When the checks ran, their own report (``stagingvm.checks``) is written and this module only
appends a short "run" section to the Markdown (and, when the run was stopped mid-check, the
run's failing test case to the JUnit file). When the run stopped earlier (the build failed,
the guest never booted, the time-out hit, Ctrl-C), these writers still produce a JUnit file
with one failing test case named for the phase, a Markdown summary and a JSON document, so a
CI job always has something to upload and to show on the pull request.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from stagingvm.escaping import md_block, md_text, xml_text

if TYPE_CHECKING:
    from stagingvm.ci.outcome import RunOutcome

_TITLES = {
    "passed": "all restrictions held",
    "violated": "a restriction was violated",
    "error": "could not check",
    "timeout": "could not check: time-out",
    "interrupted": "interrupted",
}


def write_junit(path: Path, outcome: RunOutcome) -> None:
    suites = ET.Element("testsuites")
    suites.append(_run_suite(outcome))
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


def append_run_junit(path: Path, outcome: RunOutcome) -> None:
    """Add the run's own failing test case to a check report's JUnit file (a run stopped by
    Ctrl-C or its time-out mid-check: the partial check report alone would hide why)."""
    tree = ET.parse(path)  # noqa: S314 - the file stagingvm itself has just written
    tree.getroot().append(_run_suite(outcome))
    tree.write(path, encoding="utf-8", xml_declaration=True)


def _run_suite(outcome: RunOutcome) -> ET.Element:
    suite = ET.Element(
        "testsuite",
        name="stagingvm",
        tests="1",
        failures="0",
        errors="0" if outcome.verdict == "passed" else "1",
        time=f"{sum(outcome.durations.values()):.3f}",
    )
    case = ET.SubElement(
        suite,
        "testcase",
        classname=f"stagingvm.{outcome.vm_name}",
        name=outcome.phase,
        time=f"{outcome.durations.get(outcome.phase, 0.0):.3f}",
    )
    if outcome.verdict != "passed":
        err = ET.SubElement(
            case, "error", type=outcome.verdict, message=xml_text(outcome.error or outcome.verdict)
        )
        lines = [*(outcome.detail or []), *([outcome.hint] if outcome.hint else [])]
        err.text = xml_text("\n".join(lines))
    return suite


def _run_lines(outcome: RunOutcome) -> list[str]:
    lines = [
        f"| VM | `{outcome.vm_name}` |",
        "| --- | --- |",
        f"| phase reached | {outcome.phase} |",
    ]
    if outcome.base:
        lines.append(f"| base image | `{outcome.base}` |")
    if outcome.store_path:
        lines.append(f"| store path | `{outcome.store_path}` |")
    for phase, seconds in outcome.durations.items():
        lines.append(f"| {phase} | {seconds:.1f} s |")
    state = (
        "kept for inspection"
        if outcome.kept
        else ("destroyed" if outcome.destroyed else "not created")
    )
    lines.append(f"| VM afterwards | {state} |")
    for problem in outcome.cleanup_errors:
        lines.append(f"| clean-up problem | {_cell(problem)} |")
    return lines


def _cell(text: str) -> str:
    return md_text(text, 500)


def write_markdown(path: Path, outcome: RunOutcome) -> None:
    lines = [f"## stagingvm: {_TITLES.get(outcome.verdict, outcome.verdict)}", ""]
    if outcome.error:
        lines += [f"**{_cell(outcome.error)}**", ""]
    if outcome.hint:
        lines += [f"Hint: {_cell(outcome.hint)}", ""]
    lines += [*_run_lines(outcome), ""]
    if outcome.detail:
        lines += [
            "<details><summary>last lines</summary>",
            "",
            *md_block(outcome.detail),
            "",
            "</details>",
            "",
        ]
    path.write_text("\n".join(lines), encoding="utf-8")


def append_run_markdown(path: Path, outcome: RunOutcome) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write("\n### Run\n\n" + "\n".join(_run_lines(outcome)) + "\n")


def write_json(path: Path, outcome: RunOutcome) -> None:
    path.write_text(json.dumps(outcome.to_json(), indent=2, sort_keys=True) + "\n")


WRITERS: dict[str, Callable[[Path, RunOutcome], None]] = {
    "junit": write_junit,
    "markdown": write_markdown,
    "json": write_json,
}
