"""The policy lab end to end: the seeds' designs fail, the hardened design holds.

Each design is built by the image builder and checked with the built-in ai-worker policy,
each through a different door users take:

- design A: started by the Manager with ai-worker's own key as an SMBIOS credential, then
  ``pr-test-vm check --json --junit --markdown`` in a subprocess;
- design B: ``pr-test-vm test`` in a subprocess, as CI runs it: the nix fixture flake (when
  nix is installed; ``--image`` otherwise) -> import -> start -> check -> reports -> destroy,
  with a failing check (exit 10) that must still destroy the VM and write every report;
- hardened: the library call ``check_vm``.

By default the designs run in the **NixOS file layout** (``design-a-nixos``,
``design-b-nixos``, ``hardened-nixos``: docs/images.md), the layout of the policy's real
target. The Debian-layout runs of the same designs cost another half hour under software
emulation and run on request: ``STAGINGVM_E2E_DEBIAN_LAYOUT=1`` (then the two layouts'
escapes are also compared probe by probe). Each layout must show the escape classes
docs/restrictions.md lists for its design, with evidence.

Under software emulation one ``docker run`` takes tens of seconds, so each check takes
minutes; the VMs are destroyed after their check.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt
import pytest

from stagingvm.checks import access, hardpolicy
from stagingvm.checks.reports import to_markdown
from stagingvm.checks.vmcheck import check_vm
from stagingvm.vm.manager import Manager
from tests.e2e.harness import (
    CLI_CODE,
    FIXTURE_FLAKE,
    REPO,
    Run,
    assert_left_nothing,
    build,
    keep_artifact,
)

pytestmark = pytest.mark.e2e

USER = "ai-worker"
MEMORY = 1024  # MiB: enough for a Debian guest running docker
DEBIAN_LAYOUT = os.environ.get("STAGINGVM_E2E_DEBIAN_LAYOUT") == "1"
LAYOUTS = ["nixos", "debian"] if DEBIAN_LAYOUT else ["nixos"]
on_request = pytest.mark.skipif(
    not DEBIAN_LAYOUT, reason="Debian-layout lab runs: STAGINGVM_E2E_DEBIAN_LAYOUT=1"
)


REPORTS: dict[str, dict[str, Any]] = {}
"""This run's reports by recipe name, for the comparison of the two layouts."""


def recipe_name(design: str, layout: str) -> str:
    return design if layout == "debian" else f"{design}-{layout}"


# The escape classes docs/restrictions.md lists for each design ("Lab runs"), and probes
# that must be among the escapes, in both layouts.
DESIGN_A_FAMILIES = {"wrapper-parsing", "around-wrapper", "host-handover", "container-access",
                     "secrets", "destructive"}  # fmt: skip
DESIGN_A_PROBES = ("wp-container-exec", "wp-log-level-value", "aw-full-path", "aw-env-path",
                   "aw-curl-socket-exec", "aw-python-socket-bind", "ho-bind-root",
                   "ca-volumes-from", "se-inspect-env", "de-rm-container")  # fmt: skip
DESIGN_B_FAMILIES = {"sudo-wildcards", "root-client-files", "host-handover", "container-access",
                     "secrets", "destructive"}  # fmt: skip
DESIGN_B_PROBES = ("sw-run-as-root", "sw-system-dial-stdio", "sw-run-sudoers", "rc-env-file",
                   "rc-cidfile", "se-inspect-env", "ho-bind-root", "ca-volumes-from",
                   "de-rm-container")  # fmt: skip


def _boot(run: Run, manager: Manager, design: str) -> str:
    from stagingvm.images import get_recipe

    recipe = get_recipe(design)
    disk = build(run, recipe)
    manager.import_base(disk, design, source_key=recipe.content_hash())
    name = run.vm_name(design)
    manager.start(
        name,
        base=design,
        memory=MEMORY,
        vcpus=2,
        credentials=access.user_credentials(run.settings, USER),
    )
    return name


LAYOUT_FACTS = (
    'echo "PATH=$PATH"; echo "docker=$(command -v docker)"; '
    'echo "real=$(readlink -f /run/current-system/sw/bin/docker)"; '
    'echo "sudo=$(command -v sudo)"; test -e /usr/bin/docker && echo usr-bin-docker; true'
)


def _layout_facts(run: Run, name: str, user: str) -> dict[str, str]:
    """What the guest's layout looks like to *user* over SSH (key=value lines)."""
    proc = run.cli("ssh", f"{user}@{name}", "--", "bash", "-c", LAYOUT_FACTS, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    lines = proc.stdout.decode().splitlines()
    facts = dict(line.split("=", 1) for line in lines if "=" in line)
    facts["usr-bin-docker"] = "yes" if "usr-bin-docker" in lines else "no"
    return facts


def _assert_nixos_layout(run: Run, name: str, *, wrapper: bool) -> None:
    """The guest has the NixOS layout docs/images.md describes, as root and as ai-worker."""
    for user in ("root", USER):
        facts = _layout_facts(run, name, user)
        path = facts["PATH"].split(":")
        assert path[0] == "/run/wrappers/bin" and path[-1] == "/run/current-system/sw/bin", facts
        assert "/usr/bin" not in path and "/bin" not in path, facts
        assert facts["usr-bin-docker"] == "no", facts
        assert facts["sudo"] == "/run/wrappers/bin/sudo", facts
        assert facts["real"].startswith("/nix/store/") and facts["real"].endswith("/bin/docker")
        if user == USER and wrapper:
            assert facts["docker"] == f"/etc/profiles/per-user/{USER}/bin/docker", facts
        else:
            assert facts["docker"] == "/run/current-system/sw/bin/docker", facts


@pytest.fixture(scope="module", params=LAYOUTS)
def design_a(
    run: Run, manager: Manager, request: pytest.FixtureRequest
) -> Iterator[tuple[int, dict[str, Any], str, str]]:
    layout: str = request.param
    design = recipe_name("design-a", layout)
    name = _boot(run, manager, design)
    junit = run.settings.data_dir / f"{design}.junit.xml"
    markdown = run.settings.data_dir / f"{design}.md"
    try:
        if layout == "nixos":
            _assert_nixos_layout(run, name, wrapper=True)
        proc = run.cli(
            "check", name, "--policy", "builtin:ai-worker", "--json",
            "--junit", str(junit), "--markdown", str(markdown),
            timeout=3600,
        )  # fmt: skip
    finally:
        manager.destroy(name)
    assert proc.stdout, proc.stderr.decode(errors="replace")[-3000:]
    keep_artifact(f"{design}.json", proc.stdout.decode())
    REPORTS[design] = json.loads(proc.stdout)
    yield (
        proc.returncode,
        json.loads(proc.stdout),
        keep_artifact(f"{design}.junit.xml", junit.read_text(encoding="utf-8")).read_text(),
        keep_artifact(f"{design}.md", markdown.read_text(encoding="utf-8")).read_text(),
    )


@dataclass
class CIRun:
    code: int
    stderr: str
    report: dict[str, Any]
    junit: str
    markdown: str
    vm: str


@pytest.fixture(scope="module", params=LAYOUTS)
def design_b(
    run: Run,
    conn: libvirt.virConnect,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> CIRun:
    design = recipe_name("design-b", request.param)
    image = build(run, design)
    work = tmp_path_factory.mktemp(design)
    out = work / "reports"
    out.mkdir()  # stagingvm makes no report directory
    name = run.vm_name(f"{design}-test")
    env = run.env()
    env["STAGINGVM_MEMORY"] = str(MEMORY)
    env["STAGINGVM_VCPUS"] = "2"
    if shutil.which("nix") is not None:  # the path users take: a flake's nixosConfiguration
        flake = work / "flake"
        shutil.copytree(FIXTURE_FLAKE, flake)
        env["FIXTURE_QCOW2"] = str(image)
        target = [f"{flake}#x", "--nix-option", "substituters="]
    else:
        target = ["--image", str(image)]
    done = subprocess.run(
        [sys.executable, "-c", CLI_CODE, "test", *target,
         "--policy", "builtin:ai-worker", "--name", name,
         "--junit", str(out / "junit.xml"), "--markdown", str(out / "summary.md"),
         "--report-json", str(out / "report.json"), "--timeout", "3000"],
        env=env, capture_output=True, timeout=3600, check=False, cwd=REPO,
    )  # fmt: skip
    assert_left_nothing(conn, run, name)
    stderr = done.stderr.decode(errors="replace")
    assert (out / "report.json").exists(), stderr[-3000:]
    for kept, made in (("json", "report.json"), ("junit.xml", "junit.xml"),
                       ("md", "summary.md")):  # fmt: skip
        keep_artifact(f"{design}.{kept}", (out / made).read_text(encoding="utf-8"))
    REPORTS[design] = json.loads((out / "report.json").read_text())
    return CIRun(
        done.returncode,
        stderr,
        json.loads((out / "report.json").read_text()),
        (out / "junit.xml").read_text(encoding="utf-8"),
        (out / "summary.md").read_text(encoding="utf-8"),
        name,
    )


@pytest.fixture(scope="module", params=LAYOUTS)
def hardened(
    run: Run, manager: Manager, request: pytest.FixtureRequest
) -> Iterator[dict[str, Any]]:
    design = recipe_name("hardened", request.param)
    name = _boot(run, manager, design)
    try:
        if request.param == "nixos":
            _assert_nixos_layout(run, name, wrapper=False)
        # The policy generated from the spec the recipe's helper and sudo rules come from
        # (issue 14: `pr-test-vm policy from-module`), with this layout's paths.
        report = check_vm(manager, run.settings, hardpolicy.lab_policy(request.param), name)
    finally:
        manager.destroy(name)
    keep_artifact(f"{design}.json", json.dumps(report.to_json(), indent=2, sort_keys=True))
    keep_artifact(f"{design}.md", to_markdown(report))
    REPORTS[design] = report.to_json()
    yield report.to_json()


def _escaped(report: dict[str, Any]) -> dict[str, str]:
    return {p["id"]: p["family"] for p in report["probes"] if p["outcome"] == "escaped"}


def _promise(report: dict[str, Any], ident: str) -> dict[str, Any]:
    return next(p for p in report["promises"] if p["id"] == ident)


def _controls_hold(report: dict[str, Any]) -> None:
    controls = [p for p in report["probes"] if p["control"]]
    assert len(controls) >= 4
    for probe in controls:
        assert probe["outcome"] == "held", probe
    assert not [i for i in report["infrastructure"] if "positive control" in i]


def _promised_operations_work(report: dict[str, Any]) -> None:
    for ident in ("list-containers", "inspect-service", "logs-service", "restart-service",
                  "run-container"):  # fmt: skip
        assert _promise(report, ident)["kept"] is True, _promise(report, ident)


def _with_evidence(report: dict[str, Any], probes: set[str]) -> None:
    """Every escape says what was seen, with evidence from an oracle."""
    for probe in report["probes"]:
        if probe["id"] in probes:
            assert probe["observed"] and probe["evidence"], probe


def _junit_failures(junit: str) -> set[str | None]:
    root = ET.fromstring(junit.split("\n", 1)[1])  # after the XML declaration
    return {c.get("name") for c in root.iter("testcase") if c.find("failure") is not None}


def test_design_a_fails_for_several_independent_reasons(
    design_a: tuple[int, dict[str, Any], str, str],
) -> None:
    code, report, junit, markdown = design_a
    assert code == 10
    escaped = _escaped(report)
    assert report["verdict"] == "violated"
    # the wrapper's parsing, going around it (the real client, the socket API), handing over
    # the host, other containers, secrets, destruction
    assert set(escaped.values()) >= DESIGN_A_FAMILIES, escaped
    for probe in DESIGN_A_PROBES:
        assert probe in escaped, (probe, escaped)
    _with_evidence(report, set(escaped))
    assert _promise(report, "groups")["kept"] is False  # in the docker group
    assert _promise(report, "no-exec")["kept"] is True  # the literal `docker exec` is blocked
    _controls_hold(report)
    _promised_operations_work(report)
    assert set(escaped) <= _junit_failures(junit)
    assert "wp-container-exec" in markdown and "VIOLATED" in markdown
    # `check` tears its oracles down; the phases it went through are in the report
    assert set(report["phases"]) == {
        "discover", "setup", "account", "allow", "probes", "destructive", "collect", "teardown",
    }  # fmt: skip


def assert_design_b_escapes(report: dict[str, Any]) -> dict[str, str]:
    """What design B must let through (also on a remote host, test_remote_e2e.py)."""
    escaped = _escaped(report)
    assert set(escaped.values()) >= DESIGN_B_FAMILIES, escaped
    for probe in DESIGN_B_PROBES:
        assert probe in escaped, (probe, escaped)
    _with_evidence(report, set(escaped))
    return escaped


def test_design_b_fails_through_pr_test_vm_test(design_b: CIRun) -> None:
    assert design_b.code == 10, design_b.stderr[-3000:]
    report = design_b.report
    escaped = assert_design_b_escapes(report)
    assert not [p for p in escaped.values() if p == "wrapper-parsing"]  # no wrapper, no socket
    assert _promise(report, "sudo-list")["kept"] is False
    assert _promise(report, "groups")["kept"] is True
    _controls_hold(report)
    _promised_operations_work(report)
    assert set(escaped) <= _junit_failures(design_b.junit)
    assert "sw-run-as-root" in design_b.markdown and "VIOLATED" in design_b.markdown
    assert "| VM afterwards | destroyed |" in design_b.markdown
    assert "teardown" not in report["phases"]  # the VM is destroyed: no tear-down inside it


def test_hardened_design_passes_everything(hardened: dict[str, Any]) -> None:
    assert hardened["verdict"] == "held", [
        (p["id"], p["outcome"], p["observed"])
        for p in hardened["probes"]
        if p["outcome"] not in ("held", "not-applicable")
    ] + [(p["id"], p["observed"]) for p in hardened["promises"] if p["kept"] is not True]
    assert hardened["infrastructure"] == []
    assert all(p["kept"] is True for p in hardened["promises"])
    assert _promise(hardened, "sudo-list")["kept"] and _promise(hardened, "groups")["kept"]
    assert not _escaped(hardened)
    # the helper was really attacked (it exists: discovery did not rule its family out)
    for probe in ("ha-run-image-smuggle", "ha-inspect-other", "ha-run-mount-escape"):
        outcome = next(p["outcome"] for p in hardened["probes"] if p["id"] == probe)
        assert outcome == "held", (probe, outcome)
    _controls_hold(hardened)
    _promised_operations_work(hardened)


def test_ctrl_c_in_the_middle_of_a_check_destroys_the_vm_and_keeps_what_was_found(
    run: Run, conn: libvirt.virConnect, tmp_path: Path
) -> None:
    """``pr-test-vm test --image`` on design B, interrupted while the probes run."""
    image = build(run, "design-b")
    out = tmp_path / "reports"
    out.mkdir()  # stagingvm makes no report directory
    name = run.vm_name("design-b-int")
    env = run.env()
    env["STAGINGVM_MEMORY"] = str(MEMORY)
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI_CODE, "-v", "test", "--image", str(image),
         "--policy", "builtin:ai-worker", "--name", name,
         "--junit", str(out / "junit.xml"), "--report-json", str(out / "report.json")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    lines: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:  # progress lines: one when each phase starts and ends
            lines.append(line)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline and proc.poll() is None:
            if any(line.startswith("... running") and "probes" in line for line in lines):
                break
            time.sleep(0.5)
        assert proc.poll() is None, "".join(lines)[-3000:]
        time.sleep(30)  # let some probes finish
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=10)
    stderr = "".join(lines)
    assert proc.returncode == 130, stderr[-3000:]
    assert_left_nothing(conn, run, name)
    junit = ET.parse(out / "junit.xml").getroot()
    assert "interrupted" in [e.get("type") for e in junit.iter("error")]
    report = json.loads((out / "report.json").read_text())
    assert (report["run"]["verdict"], report["run"]["phase"], report["run"]["destroyed"]) == (
        "interrupted", "check", True,
    )  # fmt: skip
    # what the check had found before Ctrl-C is in the report, judged from output alone
    assert any(i.startswith("interrupted while running probes") for i in report["infrastructure"])
    assert report["probes"], report["infrastructure"]
    assert {p["id"] for p in report["promises"]} >= {"groups", "sudo-list", "list-containers"}


# Probes whose route exists in one layout only. ns-sudo-bare-path: NixOS sets no secure_path
# (nixos/modules/security/sudo.nix writes none), so `sudo iptables` resolves `iptables` through
# the user's PATH; Debian's sudoers has secure_path.
# aw-command-p: `command -p` searches getconf PATH (/bin:/usr/bin), where NixOS has no docker.
LAYOUT_SPECIFIC = {
    "ns-sudo-bare-path": "no secure_path on NixOS",
    "aw-command-p": "no docker in /bin:/usr/bin on NixOS",
}


@on_request
def test_both_layouts_give_the_same_verdicts() -> None:
    """With the Debian layout on, each design's escapes are the same in both layouts.

    Last in the module: it compares the reports the design tests above kept in REPORTS."""
    reports = _kept_reports()
    for design in ("design-a", "design-b", "hardened"):
        debian, nixos = reports[design], reports[f"{design}-nixos"]
        assert debian["verdict"] == nixos["verdict"], design
        a, b = _escaped(debian), _escaped(nixos)
        assert set(a.values()) == set(b.values()), (design, a, b)  # the same escape classes
        # probe by probe, except where the layouts really differ (LAYOUT_SPECIFIC)
        differ = set(a) ^ set(b)
        assert differ <= set(LAYOUT_SPECIFIC), (design, sorted(differ))


def _kept_reports() -> dict[str, dict[str, Any]]:
    missing = [
        name
        for design in ("design-a", "design-b", "hardened")
        for name in (design, f"{design}-nixos")
        if name not in REPORTS
    ]
    assert not missing, f"no report of {missing} in this run"
    return REPORTS
