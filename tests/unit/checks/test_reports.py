"""Report writers against golden files (``pytest --regenerate-golden`` after an intended change)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from stagingvm.checks.model import CheckReport, Outcome, ProbeResult, PromiseResult
from stagingvm.checks.reports import summary_line, to_junit, to_markdown, verdict_line
from stagingvm.checks.verdict import raise_for_verdict
from stagingvm.errors import CheckInfrastructureError, RestrictionViolatedError

GOLDEN = Path(__file__).resolve().parents[2] / "golden"


def sample() -> CheckReport:
    return CheckReport(
        vm="lab-b",
        policy="builtin:ai-worker",
        user="ai-worker",
        duration=12.5,
        promises=[
            PromiseResult(
                "groups",
                "groups",
                "ai-worker's groups",
                True,
                "groups: ai-worker",
                ["id -Gn: ai-worker"],
            ),
            PromiseResult(
                "sudo-list",
                "sudo-list",
                "`sudo -n -l` lists only allowed commands",
                False,
                "1 rule(s) not allowed",
                ["(ALL : ALL) /usr/bin/docker run *: a wildcard leaves arguments open"],
            ),
            PromiseResult(
                "restart-service",
                "allow",
                "restart the service container",
                True,
                "works: sudo -n /usr/bin/docker restart stagingvm-svc",
                ["sudo -n /usr/bin/docker restart stagingvm-svc: stagingvm-svc"],
            ),
        ],
        probes=[
            ProbeResult(
                "ctl-rootmark-direct",
                "control",
                "the user cannot write the mark dir",
                "must fail (control)",
                Outcome.HELD,
                "refused (exit 1): Permission denied",
                duration=0.25,
                control=True,
            ),
            ProbeResult(
                "ho-bind-root",
                "host-handover",
                "`docker run -v /:/host` | pipes",
                "no root-owned mark",
                Outcome.ESCAPED,
                "root-owned file ho-bind-root appeared (with this run's mark)",
                ["root-owned file ho-bind-root appeared (with this run's mark)", "output: "],
                duration=2.5,
                risk="host as root",
                fix="no run options",
            ),
            ProbeResult(
                "aw-curl-socket-exec",
                "around-wrapper",
                "curl",
                "no mark in the victim",
                Outcome.NOT_APPLICABLE,
                "curl is not installed",
                duration=0.1,
            ),
            ProbeResult(
                "de-rm-container",
                "destructive",
                "remove",
                "object intact",
                Outcome.ERROR,
                "timed out after 35 s (no effect seen)",
                duration=35.0,
            ),
        ],
    )


def held_probe() -> ProbeResult:
    return ProbeResult(
        "ho-privileged",
        "host-handover",
        "`docker run --privileged`",
        "no root-owned mark",
        Outcome.HELD,
        "refused (exit 1): not allowed",
        duration=1.0,
    )


def _golden(request: pytest.FixtureRequest, name: str, text: str) -> None:
    path = GOLDEN / name
    if request.config.getoption("--regenerate-golden"):
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path}: run pytest --regenerate-golden"
    assert text == path.read_text(encoding="utf-8")


def test_junit_golden_and_structure(request: pytest.FixtureRequest) -> None:
    text = to_junit(sample())
    _golden(request, "check-report.junit.xml", text)
    root = ET.fromstring(text.split("\n", 1)[1])
    cases = root.findall(".//testcase")
    assert len(cases) == 3 + 4  # one per promise and per probe
    failure = root.find(".//testcase[@name='ho-bind-root']/failure")
    assert failure is not None and "appeared" in failure.get("message", "")
    assert failure.text is not None and "fix: no run options" in failure.text
    assert root.find(".//testcase[@name='aw-curl-socket-exec']/skipped") is not None
    assert root.find(".//testcase[@name='de-rm-container']/error") is not None
    assert root.find(".//testcase[@name='sudo-list']/failure") is not None
    assert root.get("failures") == "3"


def test_markdown_golden(request: pytest.FixtureRequest) -> None:
    text = to_markdown(sample())
    _golden(request, "check-report.md", text)
    assert "\\|" in text  # table cells escape pipes
    assert "**3 passed, 3 failed**" in text


def test_verdicts_and_exit_errors() -> None:
    report = sample()
    assert report.verdict == "violated"
    assert summary_line(report) == "3 passed, 3 failed"
    assert verdict_line(report).startswith("VIOLATED: 1 escape(s), 1 broken promise(s)")
    with pytest.raises(RestrictionViolatedError) as info:
        raise_for_verdict(report)
    assert info.value.exit_code == 10 and "ho-bind-root" in info.value.message
    report.probes = report.probes[:1] + report.probes[2:]
    report.promises = [p for p in report.promises if p.kept]
    assert report.verdict == "inconclusive"
    with pytest.raises(CheckInfrastructureError) as infra:
        raise_for_verdict(report)
    assert infra.value.exit_code == 11
    # A family whose every probe is not applicable (root's ground) is absent from this target,
    # but with nothing else judged the check proved nothing.
    report.probes = report.probes[:2]
    assert report.absent_families() == ["around-wrapper"]
    assert report.inconclusive == ["no probe ran to a judged end"]
    report.probes.insert(1, held_probe())
    assert report.verdict == "held"
    raise_for_verdict(report)
    # Controls held but every other probe not applicable: nothing was judged, not "held".
    nothing = sample()
    nothing.promises = [p for p in nothing.promises if p.kept]
    for r in nothing.probes:
        if not r.control:
            r.outcome, r.observed = Outcome.NOT_APPLICABLE, "absent (root)"
    assert nothing.verdict == "inconclusive"
    assert nothing.inconclusive[-1] == "no probe ran to a judged end"
    assert report.to_json()["verdict"] == "held"


HOSTILE = (
    "</details><img src=x onerror=alert(1)> [click](http://x) | ``` `x` \x1b[31m\x07\x00\x0c"
    "\ufffe" + "A" * 500
)


def _hostile() -> CheckReport:
    report = sample()
    report.probes[1].observed = HOSTILE
    report.probes[1].evidence = [HOSTILE]
    report.promises[1].observed = HOSTILE
    report.infrastructure = [f"probe said: {HOSTILE}"]
    return report


def test_junit_of_hostile_guest_output_parses_back() -> None:
    text = to_junit(_hostile())
    root = ET.fromstring(text.split("\n", 1)[1])
    messages = [e.get("message", "") for e in root.iter() if e.get("message")]
    assert any("\\x1b[31m" in m and "\\x00" in m for m in messages)
    assert all("\x1b" not in (e.text or "") for e in root.iter())


def test_markdown_of_hostile_guest_output_stays_inside_code() -> None:
    from markdown_it import MarkdownIt

    text = to_markdown(_hostile())
    assert "\x1b" not in text and "\x00" not in text
    html = MarkdownIt("commonmark").enable("table").render(text)
    assert html.count("</details>") == 1  # only the report's own
    assert "<img" not in html and "<a " not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # shown, inside <code>
    assert "more characters)" in text  # cut, with a note
