"""docs/ci.md's Gitea step is a drop-in for the seed workflow's placeholder step.

The step is taken from docs/ci.md itself (between its markers) and put, as text, in place of
"Integration tests (placeholder)" in a copy of the infra repo's workflow (fixtures/seed/
nixos.yml, from the seed document). The result must be valid YAML, with the triggers and every
other step exactly as before.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.nix.nixos_eval import ROOT, doc_block

WORKFLOW = Path(__file__).parent / "fixtures" / "seed" / "nixos.yml"
SEED_DOC = ROOT.parent / "shared" / "seeds" / "002_ffe2c71347bba737.txt"
PLACEHOLDER = "      - name: Integration tests (placeholder)\n"


def apply_step(workflow: str, step: str) -> str:
    """Replace the placeholder step (its lines up to the next step or the end) with *step*."""
    head, rest = workflow.split(PLACEHOLDER, 1)
    lines = rest.splitlines(keepends=True)
    n = 0
    while n < len(lines) and not lines[n].startswith("      - "):
        n += 1
    return head + step + "".join(lines[n:])


def triggers(doc: dict[Any, Any]) -> Any:
    return doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` as true


def steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = doc["jobs"]["build"]["steps"]
    return result


def test_the_step_replaces_the_placeholder_and_nothing_else() -> None:
    original_text = WORKFLOW.read_text()
    step = doc_block(ROOT / "docs" / "ci.md", "drop-in-step")
    patched_text = apply_step(original_text, step)
    original = yaml.safe_load(original_text)
    patched = yaml.safe_load(patched_text)

    assert triggers(patched) == triggers(original)
    assert set(triggers(patched)) == {"push", "pull_request"}
    assert triggers(patched)["push"]["branches"] == ["master"]
    before, after = steps(original), steps(patched)
    assert [s["name"] for s in before][-1] == "Integration tests (placeholder)"
    assert after[:-1] == before[:-1]  # checkout, nix set-up, nh and both `nh os build` steps
    assert any("nh os build .#lazyworkhorse" in s.get("run", "") for s in after)
    new = after[-1]
    assert new["name"] == "Integration tests (stagingvm)"
    assert "if" not in new  # runs on push to master and on pull requests alike
    run = new["run"]
    assert "pr-test-vm -v test .#lazyworkhorse" in run
    assert '--policy-ref "origin/$BASE:ci/ai-worker-policy.toml"' in run
    assert not re.search(r"--policy\s", run)  # never a policy file from the PR's own tree
    assert new["env"]["BASE"] == "${{ gitea.base_ref || gitea.ref_name }}"
    assert "${{" not in run  # event values reach the script as variables only
    assert {k: v for k, v in patched.items() if k != "jobs"} == {
        k: v for k, v in original.items() if k != "jobs"
    }


def test_every_workflow_in_the_docs_takes_the_policy_from_a_ref() -> None:
    text = (ROOT / "docs" / "ci.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    runs = [b for b in blocks if "pr-test-vm" in b and " test " in b]
    assert runs
    for block in runs:
        assert "--policy-ref" in block and not re.search(r"--policy\s", block)


def test_the_fixture_is_the_seed_workflow() -> None:
    """Line for line the seed document's workflow, leading whitespace aside."""
    if not SEED_DOC.is_file():
        pytest.skip(f"the seed documents are not here ({SEED_DOC.parent} is absent)")
    doc = SEED_DOC.read_text().splitlines()
    first = doc.index("name: NixOS Build & Test")
    last = doc.index('echo " - Run VM test if nixos-test infrastructure exists"')
    seed = [line.strip() for line in doc[first : last + 1] if line.strip()]
    fixture = [line.strip() for line in WORKFLOW.read_text().splitlines() if line.strip()]
    assert fixture == seed
