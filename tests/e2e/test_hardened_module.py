"""The hardened module's design, checked with the policy generated from its own spec.

``hardened-nixos`` (the policy lab's guest in the NixOS file layout) runs the helper and the
sudo rules ``stagingvm.checks.hardened`` generates from ``designfiles/hardened.json``, the
same bytes nix/ai-worker.nix generates (tests/nix/test_ai_worker_module.py). It is checked
with ``pr-test-vm check --policy`` on the output of ``pr-test-vm policy from-module`` for the
same spec: the battery must hold with every promise kept, the helper-abuse probes judged
against the helper where the module installs it.

One more full battery under software emulation (~20 minutes at load 5): on request only,
``STAGINGVM_E2E_HARDENED_MODULE=1`` (CI's test_checks_lab.py already checks hardened-nixos).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from stagingvm.checks import access
from stagingvm.images import get_recipe
from stagingvm.vm.manager import Manager
from tests.e2e.harness import Run, build, keep_artifact

if TYPE_CHECKING:
    import libvirt

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.environ.get("STAGINGVM_E2E_HARDENED_MODULE") != "1",
        reason="one more full battery: STAGINGVM_E2E_HARDENED_MODULE=1",
    ),
]

SPEC = Path(__file__).resolve().parents[2] / "stagingvm/checks/designfiles/hardened.json"
DESIGN = "hardened-nixos"
HELPER_PROBES = ("ha-run-image-smuggle", "ha-inspect-other", "ha-run-mount-escape")


def test_generated_policy_holds_on_the_generated_design(
    run: Run, conn: libvirt.virConnect, tmp_path: Path
) -> None:
    made = run.cli("policy", "from-module", str(SPEC))
    assert made.returncode == 0, made.stderr.decode(errors="replace")
    policy = tmp_path / "ai-worker-hardened.toml"
    policy.write_bytes(made.stdout)
    # A Debian guest under TCG on a loaded machine takes minutes to ask for a lease: more
    # than the tiny guest's waits the run's settings are made for.
    waits = dataclasses.replace(run.settings.timeouts, running=60, lease=150, banner=120)
    manager = Manager(dataclasses.replace(run.settings, timeouts=waits), conn=conn)
    recipe = get_recipe(DESIGN)
    manager.import_base(build(run, recipe), DESIGN, source_key=recipe.content_hash())
    name = run.vm_name("hardmod")
    manager.start(
        name, base=DESIGN, memory=1024, vcpus=2,
        credentials=access.user_credentials(run.settings, "ai-worker"),
    )  # fmt: skip
    try:
        proc = run.cli("check", name, "--policy", str(policy), "--json", timeout=3600)
    finally:
        manager.destroy(name)
    assert proc.stdout, proc.stderr.decode(errors="replace")[-3000:]
    keep_artifact(f"{DESIGN}.module-policy.json", proc.stdout.decode())
    report = json.loads(proc.stdout)
    problems = [
        (p["id"], p["outcome"], p["observed"])
        for p in report["probes"]
        if p["outcome"] not in ("held", "not-applicable")
    ] + [(p["id"], p["observed"]) for p in report["promises"] if p["kept"] is not True]
    assert report["verdict"] == "held", problems
    assert proc.returncode == 0
    assert report["infrastructure"] == []
    assert {p["id"] for p in report["promises"]} >= {
        "groups", "sudo-list", "list-containers", "inspect-service", "logs-service",
        "restart-service", "run-container",
    }  # fmt: skip
    assert all(p["kept"] is True for p in report["promises"])
    outcomes = {p["id"]: p["outcome"] for p in report["probes"]}
    for probe in HELPER_PROBES:  # run against /run/current-system/sw/bin/ai-docker
        assert outcomes[probe] == "held", (probe, outcomes[probe])
    controls = [p for p in report["probes"] if p["control"]]
    assert len(controls) >= 4 and all(p["outcome"] == "held" for p in controls)
