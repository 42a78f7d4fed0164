"""Report writers: JUnit XML (one testcase per promise and per probe) and a Markdown summary
fit for a PR comment. Both are pure functions of a ``CheckReport``; output is deterministic
(no timestamps, fixed order), so golden files can pin it."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from stagingvm.checks.model import CheckReport, Outcome
from stagingvm.checks.target.facts import summary_lines
from stagingvm.escaping import md_code, md_text, xml_text

_ICON = {
    Outcome.HELD: "held",
    Outcome.ESCAPED: "**ESCAPED**",
    Outcome.NOT_APPLICABLE: "n/a",
    Outcome.ERROR: "error",
    Outcome.CONTROL_FAILED: "**control failed**",
}


def verdict_line(report: CheckReport) -> str:
    if report.verdict == "violated":
        head = (
            f"VIOLATED: {len(report.violations)} escape(s), "
            f"{len(report.broken_promises)} broken promise(s)"
        )
    elif report.verdict == "inconclusive":
        head = f"COULD NOT CHECK: {len(report.inconclusive)} problem(s)"
    else:
        head = "HELD: every promise kept, no escape found"
    return f"{head} ({report.policy}, user {report.user}, VM {report.vm})"


def summary_line(report: CheckReport) -> str:
    passed, failed = report.counts()
    return f"{passed} passed, {failed} failed"


def to_junit(report: CheckReport) -> str:
    _, failed = report.counts()
    suites = ET.Element("testsuites", name=f"stagingvm check {report.vm}")
    promises = ET.SubElement(suites, "testsuite", name="promises")
    props = ET.SubElement(promises, "properties")
    ET.SubElement(props, "property", name="policy", value=xml_text(report.policy))
    ET.SubElement(props, "property", name="policy.sha256", value=report.policy_sha256)
    for p in report.promises:
        case = ET.SubElement(promises, "testcase", classname=f"promise.{p.kind}", name=p.promise_id)
        if p.kept is False:
            fail = ET.SubElement(
                case,
                "failure",
                message=xml_text(f"{p.description}: {p.observed}"),
                type="broken-promise",
            )
            fail.text = xml_text("\n".join(p.evidence))
        elif p.kept is None:
            err = ET.SubElement(case, "error", message=xml_text(p.observed), type="could-not-check")
            err.text = xml_text("\n".join(p.evidence))
    _counts(
        promises,
        [
            ("failures", sum(p.kept is False for p in report.promises)),
            ("errors", sum(p.kept is None for p in report.promises)),
            ("skipped", 0),
            ("tests", len(report.promises)),
        ],
    )
    families: dict[str, ET.Element] = {}
    for r in report.probes:
        suite = families.get(r.family)
        if suite is None:
            suite = families[r.family] = ET.SubElement(
                suites, "testsuite", name=f"probes.{r.family}"
            )
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"probe.{r.family}",
            name=r.probe_id,
            time=f"{r.duration:.3f}",
        )
        if r.outcome is Outcome.ESCAPED:
            fail = ET.SubElement(
                case, "failure", message=xml_text(f"{r.title}: {r.observed}"), type="escape"
            )
            fail.text = xml_text("\n".join([*r.evidence, f"risk: {r.risk}", f"fix: {r.fix}"]))
        elif r.outcome in (Outcome.ERROR, Outcome.CONTROL_FAILED):
            err = ET.SubElement(case, "error", message=xml_text(r.observed), type=str(r.outcome))
            err.text = xml_text("\n".join(r.evidence))
        elif r.outcome is Outcome.NOT_APPLICABLE:
            ET.SubElement(case, "skipped", message=xml_text(r.observed))
    for name, suite in families.items():
        results = [r for r in report.probes if r.family == name]
        _counts(
            suite,
            [
                ("failures", sum(r.outcome is Outcome.ESCAPED for r in results)),
                (
                    "errors",
                    sum(r.outcome in (Outcome.ERROR, Outcome.CONTROL_FAILED) for r in results),
                ),
                ("skipped", sum(r.outcome is Outcome.NOT_APPLICABLE for r in results)),
                ("tests", len(results)),
            ],
        )
    if report.infrastructure:
        infra = ET.SubElement(
            suites,
            "testsuite",
            name="infrastructure",
            tests="1",
            failures="0",
            errors="1",
            skipped="0",
        )
        case = ET.SubElement(infra, "testcase", classname="infrastructure", name="harness")
        err = ET.SubElement(
            case, "error", message=xml_text(report.infrastructure[0]), type="infrastructure"
        )
        err.text = xml_text("\n".join(report.infrastructure))
    suites.set("tests", str(len(report.promises) + len(report.probes)))
    suites.set("failures", str(failed))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, "unicode") + "\n"


def _counts(suite: ET.Element, counts: list[tuple[str, int]]) -> None:
    for key, value in counts:
        suite.set(key, str(value))


def _cell(text: str, limit: int = 160) -> str:
    """Text that may carry what the guest printed: a code span, never markup."""
    return md_code(text, limit)


def to_markdown(report: CheckReport) -> str:
    passed, failed = report.counts()
    out = [f"### pr-test-vm check: {verdict_line(report)}", ""]
    out.append(
        f"**{passed} passed, {failed} failed**"
        f" ({len(report.probes)} probes, {len(report.promises)} promises)"
    )
    out.append("")
    out += [
        f"Policy: {md_code(report.policy)}, sha256 {md_code(report.policy_sha256 or 'unknown')}",
        "",
    ]
    if report.infrastructure:
        out += ["**Could not check:**", ""]
        out += [f"- {_cell(i, 300)}" for i in report.infrastructure]
        out.append("")
    target = summary_lines(report.target)
    if target:
        out += ["**Target (discovery):**", ""] + [f"- {_cell(line, 300)}" for line in target] + [""]
    bad_promises = [p for p in report.promises if p.kept is not True]
    if report.violations or bad_promises:
        out += ["#### Findings", "", "| | what | evidence | fix |", "|---|---|---|---|"]
        for p in bad_promises:
            state = "broken" if p.kept is False else "unknown"
            out.append(
                f"| promise {state} | `{p.promise_id}`: {md_text(p.description)} | "
                f"{_cell(p.observed)} | |"
            )
        for r in report.violations:
            out.append(
                f"| escape | `{r.probe_id}` ({r.family}): {md_text(r.title)} | "
                f"{_cell(r.observed)} | {md_text(r.fix, 120)} |"
            )
        out.append("")
    out += [
        "<details><summary>All promises and probes</summary>",
        "",
        "| family | check | expected | observed |",
        "|---|---|---|---|",
    ]
    for p in report.promises:
        state = {True: "kept", False: "**BROKEN**", None: "unknown"}[p.kept]
        out.append(f"| promise | `{p.promise_id}` {state} | {p.kind} | {_cell(p.observed)} |")
    for r in report.probes:
        out.append(
            f"| {r.family} | `{r.probe_id}` {_ICON[r.outcome]} | {md_text(r.expected)} | "
            f"{_cell(r.observed)} |"
        )
    out += ["", "</details>", ""]
    return "\n".join(out)
