"""The policy lab end to end: the seeds' designs fail, the hardened design holds.

Each design is built by the image builder, started with ai-worker's own key as an SMBIOS
credential, and checked with the built-in ai-worker policy: design A through the library,
design B through the CLI (``pr-test-vm check --json --junit --markdown``, as CI runs it), the
hardened design through the library. Under software emulation one ``docker run`` takes tens
of seconds, so each check takes minutes; the VMs are destroyed after their check.
"""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest

from stagingvm.checks import access
from stagingvm.checks.runner import run_check
from stagingvm.cli.cmd_check import EMULATED_CONCURRENCY
from stagingvm.policy import load_policy
from stagingvm.vm import Manager
from tests.e2e.harness import Run, build

pytestmark = pytest.mark.e2e

USER = "ai-worker"


def _boot(run: Run, manager: Manager, design: str) -> str:
    from stagingvm.images import get_recipe

    recipe = get_recipe(design)
    disk = build(run, recipe)
    manager.import_base(disk, design, source_key=recipe.content_hash())
    name = run.vm_name(design)
    manager.start(
        name,
        base=design,
        memory=2048,
        vcpus=2,
        credentials=access.user_credentials(run.settings, USER),
    )
    return name


def _library_check(run: Run, manager: Manager, name: str) -> dict[str, Any]:
    policy = load_policy("builtin:ai-worker")
    emulated = manager.status(name).domain_type == "qemu"
    factor = run.settings.timeouts.tcg_factor if emulated else 1.0
    if emulated:  # as `pr-test-vm check` does: fewer docker runs at once under TCG
        probes = dataclasses.replace(policy.probes, concurrency=EMULATED_CONCURRENCY)
        policy = dataclasses.replace(policy, probes=probes)
    key = access.user_key_path(run.settings, USER)
    with (
        access.connect(manager.ssh_target(name, "root")) as root,
        access.connect(manager.ssh_target(name, USER), key_path=key) as user,
    ):
        report = run_check(policy, root=root, user=user, vm=name, timeout_factor=factor)
    return report.to_json()


@pytest.fixture(scope="module")
def design_a(run: Run, manager: Manager) -> Iterator[dict[str, Any]]:
    name = _boot(run, manager, "design-a")
    try:
        yield _library_check(run, manager, name)
    finally:
        manager.destroy(name)


@pytest.fixture(scope="module")
def design_b(run: Run, manager: Manager) -> Iterator[tuple[int, dict[str, Any], str, str]]:
    name = _boot(run, manager, "design-b")
    junit = run.settings.data_dir / "design-b.junit.xml"
    markdown = run.settings.data_dir / "design-b.md"
    try:
        proc = run.cli(
            "check", name, "--policy", "builtin:ai-worker", "--json",
            "--junit", str(junit), "--markdown", str(markdown),
            timeout=3600,
        )  # fmt: skip
    finally:
        manager.destroy(name)
    yield (
        proc.returncode,
        json.loads(proc.stdout),
        junit.read_text(encoding="utf-8"),
        markdown.read_text(encoding="utf-8"),
    )


@pytest.fixture(scope="module")
def hardened(run: Run, manager: Manager) -> Iterator[dict[str, Any]]:
    name = _boot(run, manager, "hardened")
    try:
        yield _library_check(run, manager, name)
    finally:
        manager.destroy(name)


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


def test_design_a_fails_for_several_independent_reasons(design_a: dict[str, Any]) -> None:
    escaped = _escaped(design_a)
    assert design_a["verdict"] == "violated"
    # the wrapper's parsing, going around it, handing over the host, other containers
    assert {"wrapper-parsing", "around-wrapper", "host-handover", "container-access"} <= set(
        escaped.values()
    ), escaped
    for probe in ("wp-container-exec", "wp-log-level-value", "aw-full-path",
                  "aw-curl-socket-exec", "ho-bind-root", "ca-volumes-from"):  # fmt: skip
        assert probe in escaped, (probe, escaped)
    assert _promise(design_a, "groups")["kept"] is False  # in the docker group
    assert _promise(design_a, "no-exec")["kept"] is True  # the literal `docker exec` is blocked
    _controls_hold(design_a)
    _promised_operations_work(design_a)


def test_design_b_fails_for_several_independent_reasons(
    design_b: tuple[int, dict[str, Any], str, str],
) -> None:
    code, report, junit, markdown = design_b
    assert code == 10
    escaped = _escaped(report)
    assert {"sudo-wildcards", "root-client-files", "host-handover", "secrets"} <= set(
        escaped.values()
    ), escaped
    for probe in ("sw-run-as-root", "sw-system-dial-stdio", "rc-env-file", "rc-cidfile",
                  "se-inspect-env", "ho-bind-root"):  # fmt: skip
        assert probe in escaped, (probe, escaped)
    assert not [p for p in escaped.values() if p == "wrapper-parsing"]  # no wrapper, no socket
    assert _promise(report, "sudo-list")["kept"] is False
    assert _promise(report, "groups")["kept"] is True
    _controls_hold(report)
    _promised_operations_work(report)
    root = ET.fromstring(junit.split("\n", 1)[1])
    failed = {c.get("name") for c in root.iter("testcase") if c.find("failure") is not None}
    assert set(escaped) <= failed
    assert "sw-run-as-root" in markdown and "VIOLATED" in markdown


def test_hardened_design_passes_everything(hardened: dict[str, Any]) -> None:
    assert hardened["verdict"] == "held", [
        (p["id"], p["outcome"], p["observed"])
        for p in hardened["probes"]
        if p["outcome"] not in ("held", "not-applicable")
    ] + [(p["id"], p["observed"]) for p in hardened["promises"] if p["kept"] is not True]
    assert hardened["infrastructure"] == []
    assert all(p["kept"] is True for p in hardened["promises"])
    assert not _escaped(hardened)
    _controls_hold(hardened)
    _promised_operations_work(hardened)
