"""The battery on an image stagingvm's builder never made (tests/e2e/ownimage.py).

The design is seed 003's, the oldest in the user's repo: ai-worker in the ``docker`` group,
no wrapper, no sudo. The disk is imported with ``pr-test-vm build --image`` and checked with
``pr-test-vm test --image``: nothing of the image builder (recipes, manifests, pinned host
keys, its credential files) is involved, so the battery is shown to work from what it finds.

To keep CI short the policy runs two probe families only (``[probes] families``): handing the
host over through a container and going around the client through the socket API: both must
escape on this design. Promises and controls run as always.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import libvirt
import pytest

from stagingvm.images import cached_disk, image_dir
from stagingvm.ssh.keys import CREDENTIAL_PREFIX
from tests.e2e.harness import CLI_CODE, REPO, Run, assert_left_nothing, e2e_recipes, keep_artifact
from tests.e2e.ownimage import make_disk

pytestmark = pytest.mark.e2e

FAMILIES = ("host-handover", "around-wrapper")


def _policy(path: Path) -> Path:
    """builtin:ai-worker with only FAMILIES and no destructive probes."""
    text = resources.files("stagingvm.policy.builtin").joinpath("ai-worker.toml").read_text()
    text, n = re.subn(r'(?m)^families = \["all"\]$', f"families = {json.dumps(list(FAMILIES))}",
                      text)  # fmt: skip
    text, m = re.subn(r"(?m)^destructive = true$", "destructive = false", text)
    assert (n, m) == (1, 1), "the built-in policy's [probes] changed: update this test"
    path.write_text(text.replace('name = "ai-worker"\n', 'name = "ai-worker-own-image"\n', 1))
    return path


def test_battery_on_an_image_of_its_own(run: Run, conn: libvirt.virConnect, tmp_path: Path) -> None:
    rootfs_recipe = e2e_recipes()["e2e-lab-rootfs"]
    if cached_disk(rootfs_recipe, run.cache_settings) is None:
        pytest.fail("e2e-lab-rootfs is not built: run `python -m tests.e2e.harness` first")
    tar = image_dir(rootfs_recipe, run.cache_settings) / "rootfs.tar.zst"
    policy = _policy(tmp_path / "policy.toml")
    # the credential `test` passes the policy's user's key in (docs/restrictions.md)
    credential = CREDENTIAL_PREFIX + "ai-worker"
    disk = make_disk(tar, tmp_path, user="ai-worker", groups=("docker",), credential=credential)

    base = run.vm_name("own-image")
    imported = run.cli("build", "--image", str(disk), "--name", base, "--json", timeout=600)
    assert imported.returncode == 0, imported.stderr.decode(errors="replace")[-2000:]
    assert json.loads(imported.stdout)["name"] == base

    out = tmp_path / "reports"
    out.mkdir()  # stagingvm makes no report directory
    name = run.vm_name("own-image-test")
    env = run.env()
    env["STAGINGVM_MEMORY"] = "1024"
    env["STAGINGVM_VCPUS"] = "2"
    done = subprocess.run(
        [sys.executable, "-c", CLI_CODE, "test", "--image", str(disk), "--policy", str(policy),
         "--name", name, "--report-json", str(out / "report.json"),
         "--markdown", str(out / "summary.md"), "--timeout", "2400"],
        env=env, capture_output=True, timeout=3000, check=False, cwd=REPO,
    )  # fmt: skip
    assert_left_nothing(conn, run, name)
    stderr = done.stderr.decode(errors="replace")
    assert (out / "report.json").exists(), stderr[-3000:]
    keep_artifact("own-image.json", (out / "report.json").read_text(encoding="utf-8"))
    report = json.loads((out / "report.json").read_text())
    assert done.returncode == 10, stderr[-3000:]
    assert report["verdict"] == "violated"
    assert report["infrastructure"] == [], report["infrastructure"]
    escaped = {p["id"]: p for p in report["probes"] if p["outcome"] == "escaped"}
    assert {p["family"] for p in escaped.values()} == set(FAMILIES), sorted(escaped)
    for probe in ("ho-bind-root", "aw-curl-socket-exec", "aw-python-socket-bind"):
        assert probe in escaped, (probe, sorted(escaped))
        assert escaped[probe]["observed"] and escaped[probe]["evidence"], escaped[probe]
    assert {p["family"] for p in report["probes"]} <= {*FAMILIES, "control"}
    assert all(p["outcome"] == "held" for p in report["probes"] if p["control"])
    promises = {p["id"]: p for p in report["promises"]}
    assert promises["groups"]["kept"] is False  # in the docker group: root on the host
    assert promises["list-containers"]["kept"] is True
