"""``stagingvm.ci.run.run_test`` on libvirt's test driver: the VM is always destroyed and the
reports are always written, whatever ends the run.

The base image is imported "already" (its record and volume made the way import_base leaves
them, because the test driver cannot take uploads), so ``run_test``'s own import is the
no-op of a known source key and the rest of the run goes through the real Manager.
"""

from __future__ import annotations

import hashlib
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from stagingvm.ci.run import (
    ReportPaths,
    RunOutcome,
    RunRequest,
    _write_reports,
    base_name_for,
    image_source_key,
    run_test,
    vm_name_for,
)
from stagingvm.cli.ci_env import pr_and_commit
from stagingvm.errors import (
    CheckInfrastructureError,
    InvalidInputError,
    RestrictionViolatedError,
)
from stagingvm.settings import Settings, SSHSettings, Timeouts
from stagingvm.virt import bases, storage
from stagingvm.virt.connection import connect, forget
from stagingvm.vm.manager import Manager, overlay_name

URI = "test:///default"
WORKER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTheTestsOnly ai-worker@test"


class UpProbes:
    """The guest's sshd answers at once (the test driver has no guest to ask)."""

    def banner(self, host: str, port: int, timeout: float) -> str | None:
        return "SSH-2.0-OpenSSH_9.9 (test)"

    def login(self, host: str, **kwargs: Any) -> bool:
        return True


class Report:
    def __init__(self, passed: bool, verdict: str | None = None) -> None:
        self.passed = passed
        self.verdict = verdict or ("held" if passed else "violated")

    def summary(self) -> str:
        return "1 of 1 checks passed" if self.passed else "1 of 1 checks failed"

    def write_json(self, path: Path, *, run: Mapping[str, Any]) -> None:
        path.write_text(json.dumps({"passed": self.passed, "run": dict(run)}))

    def write_junit(self, path: Path) -> None:
        failure = "" if self.passed else "<failure message='docker exec worked'/>"
        path.write_text(
            f"<testsuites><testsuite name='policy' tests='1'><testcase name='no-exec'>"
            f"{failure}</testcase></testsuite></testsuites>"
        )

    def write_markdown(self, path: Path) -> None:
        path.write_text(f"## policy: {self.summary()}\n")


class Policy:
    """A policy side that records what it saw and then behaves as told."""

    def __init__(self, manager: Manager, behaviour: str = "pass") -> None:
        self.manager = manager
        self.behaviour = behaviour
        self.seen_running: bool | None = None
        self.found: Report | None = None  # what an interrupted run had found

    def partial(self) -> Report | None:
        return self.found

    def credentials(self) -> Mapping[str, str]:
        return {"stagingvm.authorized_keys.ai-worker": WORKER_KEY}

    def run(self, vm_name: str) -> Report:
        dom = self.manager.conn.lookupByName(vm_name)
        self.seen_running = bool(dom.isActive())
        if self.behaviour.startswith("interrupt"):
            if self.behaviour == "interrupt-after-finding":
                self.found = Report(passed=False)
            raise KeyboardInterrupt
        if self.behaviour.startswith("hang"):
            if self.behaviour == "hang-after-finding":
                self.found = Report(passed=False)
            time.sleep(30)
        if self.behaviour == "infra":
            raise CheckInfrastructureError("ssh to ai-worker failed")
        if self.behaviour == "inconclusive":
            return Report(passed=False, verdict="inconclusive")
        return Report(passed=self.behaviour == "pass")


@pytest.fixture
def conn() -> Iterator[Any]:
    connection = connect(URI)
    try:
        yield connection
    finally:
        forget(URI)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        uri=URI,
        storage_pool=tmp_path / "pool",
        data_dir=tmp_path / "data",
        ssh=SSHSettings(key=tmp_path / "keys" / "id_ed25519"),
        timeouts=Timeouts(running=1, lease=1, banner=1, login=1, shutdown=1, tcg_factor=1),
    )


@pytest.fixture
def manager(settings: Settings, conn: Any, tmp_path: Path) -> Manager:
    routes = tmp_path / "route"  # a host with only a default route: no subnet clashes
    routes.write_text(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "eth0\t00000000\t0100140A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    )
    return Manager(
        settings,
        conn=conn,
        domain_type="qemu",
        probes=UpProbes(),
        routes_path=routes,
        lock_timeout=5,
    )


@pytest.fixture
def image(tmp_path: Path, manager: Manager) -> Path:
    """A disk file whose base is already in the pool under the key run_test computes."""
    disk = tmp_path / "lab.qcow2"
    disk.write_bytes(b"QFI\xfb" + bytes(508))
    key = image_source_key(disk.resolve())
    name = f"lab-{hashlib.sha256(key.encode()).hexdigest()[:8]}"
    pool = manager.host.ensure_host()
    volume = bases.volume_name(name, key)
    vol = pool.createXML(
        storage.render_volume(volume, capacity=1 << 30, fmt="qcow2", mode=storage.BASE_MODE), 0
    )
    bases.write_record(
        manager.settings.data_dir,
        bases.BaseImage(
            name=name,
            volume=volume,
            path=vol.path(),
            format="qcow2",
            virtual_size=1 << 30,
            source=str(disk),
            source_key=key,
            imported_at="2026-11-22T00:00:00Z",
        ),
    )
    return disk


def request(tmp_path: Path, image: Path, **kwargs: Any) -> RunRequest:
    (tmp_path / "out").mkdir(exist_ok=True)  # the CLI checked it exists; none is made
    reports = ReportPaths(
        junit=tmp_path / "out" / "junit.xml",
        markdown=tmp_path / "out" / "summary.md",
        json=tmp_path / "out" / "report.json",
    )
    return RunRequest(vm_name="pr42-abc1234-beef", image=image, reports=reports, **kwargs)


def run_and_raise(req: RunRequest, settings: Settings, manager: Manager, policy: Policy) -> None:
    """What `pr-test-vm test` does: run, then turn the outcome into the exit-code error."""
    run_test(req, settings, manager, policy).raise_for_verdict()


def assert_gone(manager: Manager, name: str) -> None:
    assert name not in [d.name() for d in manager.conn.listAllDomains(0)]
    pool = storage.require_pool(manager.conn, manager.settings.pool_name)
    assert storage.volume_lookup(pool, overlay_name(name)) is None
    assert not manager.settings.vm_dir(name).exists()


def junit_errors(path: Path) -> list[ET.Element]:
    return ET.parse(path).getroot().findall(".//error")


def test_passing_run_reports_and_destroys(
    manager: Manager, settings: Settings, image: Path, tmp_path: Path
) -> None:
    policy = Policy(manager)
    outcome = run_test(request(tmp_path, image), settings, manager, policy)
    assert policy.seen_running is True
    assert outcome.verdict == "passed" and outcome.destroyed and not outcome.kept
    assert set(outcome.durations) == {"build", "start", "check"}
    assert_gone(manager, outcome.vm_name)
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert doc["passed"] is True
    assert (doc["run"]["verdict"], doc["run"]["destroyed"]) == ("passed", True)
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "1 of 1 checks passed" in summary and "| VM afterwards | destroyed |" in summary


def test_the_restricted_users_key_reaches_the_domain(
    manager: Manager, settings: Settings, image: Path, tmp_path: Path
) -> None:
    seen: list[str] = []

    class Looking(Policy):
        def run(self, vm_name: str) -> Report:
            seen.append(self.manager.conn.lookupByName(vm_name).XMLDesc(0))
            return Report(passed=True)

    run_test(request(tmp_path, image), settings, manager, Looking(manager))
    assert f"io.systemd.credential:stagingvm.authorized_keys.ai-worker={WORKER_KEY}" in seen[0]


def test_violation_raises_exit_10_and_still_destroys(
    manager: Manager, settings: Settings, image: Path, tmp_path: Path
) -> None:
    with pytest.raises(RestrictionViolatedError) as err:
        run_and_raise(
            request(tmp_path, image), settings, manager, Policy(manager, "fail")
        ).raise_for_verdict()
    assert err.value.exit_code == 10
    assert_gone(manager, "pr42-abc1234-beef")
    assert "failure" in (tmp_path / "out" / "junit.xml").read_text()


def test_check_infrastructure_failure_is_exit_11_with_a_run_report(
    manager: Manager, settings: Settings, image: Path, tmp_path: Path
) -> None:
    with pytest.raises(CheckInfrastructureError) as err:
        run_test(
            request(tmp_path, image), settings, manager, Policy(manager, "infra")
        ).raise_for_verdict()
    assert err.value.exit_code == 11
    assert_gone(manager, "pr42-abc1234-beef")
    (error,) = junit_errors(tmp_path / "out" / "junit.xml")
    assert error.get("message") == "ssh to ai-worker failed"
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert doc["phase"] == "check" and doc["verdict"] == "error" and doc["destroyed"]


def test_inconclusive_checks_are_exit_11_with_the_policy_report(
    manager: Manager, settings: Settings, image: Path, tmp_path: Path
) -> None:
    with pytest.raises(CheckInfrastructureError) as err:
        run_test(
            request(tmp_path, image), settings, manager, Policy(manager, "inconclusive")
        ).raise_for_verdict()
    assert "could not check (report)" in str(err.value)
    assert_gone(manager, "pr42-abc1234-beef")
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert doc["passed"] is False and doc["run"]["vm"] == "pr42-abc1234-beef"


def test_ctrl_c_mid_check_destroys_and_writes_reports(
    manager: Manager, settings: Settings, image: Path, tmp_path: Path
) -> None:
    with pytest.raises(KeyboardInterrupt):
        run_test(request(tmp_path, image), settings, manager, Policy(manager, "interrupt"))
    assert_gone(manager, "pr42-abc1234-beef")
    (error,) = junit_errors(tmp_path / "out" / "junit.xml")
    assert error.get("type") == "interrupted"
    assert "## stagingvm: interrupted" in (tmp_path / "out" / "summary.md").read_text()


def test_ctrl_c_mid_check_keeps_what_the_check_had_found(
    manager: Manager, settings: Settings, image: Path, tmp_path: Path
) -> None:
    with pytest.raises(KeyboardInterrupt):
        run_test(
            request(tmp_path, image),
            settings,
            manager,
            Policy(manager, "interrupt-after-finding"),
        )
    assert_gone(manager, "pr42-abc1234-beef")
    out = tmp_path / "out"
    junit = (out / "junit.xml").read_text()
    assert "docker exec worked" in junit  # the check's own finding, not lost
    (error,) = junit_errors(out / "junit.xml")  # and the run's reason for stopping
    assert error.get("type") == "interrupted"
    doc = json.loads((out / "report.json").read_text())
    assert doc["passed"] is False
    assert (doc["run"]["verdict"], doc["run"]["phase"]) == ("interrupted", "check")
    summary = (out / "summary.md").read_text()
    assert "1 of 1 checks failed" in summary and "| VM afterwards | destroyed |" in summary


def test_time_out_mid_check_keeps_what_the_check_had_found(
    manager: Manager, settings: Settings, image: Path, tmp_path: Path
) -> None:
    with pytest.raises(CheckInfrastructureError):
        run_test(
            request(tmp_path, image, timeout=2),
            settings,
            manager,
            Policy(manager, "hang-after-finding"),
        ).raise_for_verdict()
    (error,) = junit_errors(tmp_path / "out" / "junit.xml")
    assert error.get("type") == "timeout"
    assert "docker exec worked" in (tmp_path / "out" / "junit.xml").read_text()
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert doc["run"]["verdict"] == "timeout"


def test_global_time_out_stops_a_hanging_check(
    manager: Manager, settings: Settings, image: Path, tmp_path: Path
) -> None:
    with pytest.raises(CheckInfrastructureError) as err:
        run_test(
            request(tmp_path, image, timeout=2), settings, manager, Policy(manager, "hang")
        ).raise_for_verdict()
    assert "within 2 s" in str(err.value)
    assert_gone(manager, "pr42-abc1234-beef")
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert doc["verdict"] == "timeout" and doc["phase"] == "check"


def test_keep_on_failure_keeps_the_vm(
    manager: Manager, settings: Settings, image: Path, tmp_path: Path
) -> None:
    req = request(tmp_path, image, keep_on_failure=True)
    with pytest.raises(RestrictionViolatedError):
        run_test(req, settings, manager, Policy(manager, "fail")).raise_for_verdict()
    assert manager.conn.lookupByName(req.vm_name).isActive()
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert doc["passed"] is False and doc["run"]["vm"] == "pr42-abc1234-beef"
    manager.destroy(req.vm_name)
    assert_gone(manager, req.vm_name)


def test_failed_boot_is_exit_11_and_leaves_nothing(
    manager: Manager, settings: Settings, image: Path, tmp_path: Path
) -> None:
    class Down(UpProbes):
        def banner(self, host: str, port: int, timeout: float) -> str | None:
            return None

    manager.host.probes = Down()
    with pytest.raises(CheckInfrastructureError) as err:
        run_test(request(tmp_path, image), settings, manager, Policy(manager)).raise_for_verdict()
    assert "start" in str(err.value)
    assert_gone(manager, "pr42-abc1234-beef")
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert doc["phase"] == "start" and doc["verdict"] == "error"


def test_a_name_in_use_is_refused_before_anything_is_destroyed(
    manager: Manager, settings: Settings, image: Path, tmp_path: Path
) -> None:
    req = request(tmp_path, image)
    with pytest.raises(InvalidInputError):
        run_test(RunRequest(vm_name="Bad Name", image=image), settings, manager, Policy(manager))
    assert not any((tmp_path / "out").iterdir())
    assert req.vm_name not in [d.name() for d in manager.conn.listAllDomains(0)]


def test_vm_names_from_ci() -> None:
    assert vm_name_for("42", "1a2b3c4d5e6f", "beef") == "pr42-1a2b3c4-beef"
    assert vm_name_for(None, None, "beef") == "test-beef"
    assert vm_name_for("7", None, "x9") == "pr7-x9"


def test_base_names_follow_the_store_path() -> None:
    path = "/nix/store/abcdefgh12345678abcdefgh12345678-stagingvm-disk-image"
    assert base_name_for("lazyworkhorse", path) == "lazyworkhorse-abcdefgh"


def test_pr_and_commit_from_github_or_gitea_event(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 17, "head": {"sha": "cafe" * 10}}}))
    env = {"GITHUB_EVENT_PATH": str(event), "GITHUB_SHA": "merge" * 8, "GITEA_ACTIONS": "true"}
    assert pr_and_commit(env) == ("17", "cafe" * 10)
    assert pr_and_commit({"GITHUB_REF": "refs/pull/9/merge", "GITHUB_SHA": "ab12"}) == (
        "9",
        "ab12",
    )
    assert pr_and_commit({}) == (None, None)


def test_a_recipe_is_built_inside_the_run(
    manager: Manager, settings: Settings, image: Path, tmp_path: Path
) -> None:
    """`test --recipe`: the build is the run's build phase, so its failure is reported."""
    import tests.unit.images.builders  # noqa: F401  registers unit-failing
    from stagingvm.images.recipe import Recipe

    broken = Recipe(name="unit-broken", builder="unit-failing")
    (tmp_path / "out").mkdir()  # report directories are never made by the run
    req = RunRequest(
        vm_name="pr42-abc1234-beef",
        recipe=broken,
        reports=ReportPaths(json=tmp_path / "out" / "report.json"),
    )
    outcome = run_test(req, settings, manager, Policy(manager))
    assert (outcome.phase, outcome.verdict) == ("build", "error")
    assert "build" in outcome.durations and "start" not in outcome.durations
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert (doc["phase"], doc["verdict"]) == ("build", "error")
    assert "exited with status 3" in doc["error"]
    assert_gone(manager, "pr42-abc1234-beef")
    with pytest.raises(CheckInfrastructureError, match="exactly one of"):
        run_test(replace(req, image=image), settings, manager, Policy(manager))


def test_a_report_that_cannot_be_written_keeps_the_verdict(tmp_path: Path) -> None:
    """The run's outcome stays; the write failure is recorded, no directory is made."""
    outcome = RunOutcome(vm_name="pr42-abc1234-beef", verdict="violated", phase="report")
    missing = tmp_path / "gone" / "junit.xml"
    good = tmp_path / "summary.md"
    _write_reports(ReportPaths(junit=missing, markdown=good), outcome, None)
    assert outcome.verdict == "violated"
    assert outcome.reports == [good] and good.exists()
    assert len(outcome.report_errors) == 1 and "junit" in outcome.report_errors[0]
    assert not (tmp_path / "gone").exists()
