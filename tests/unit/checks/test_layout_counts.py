"""scripts/layout_counts.py: the two layouts' counts by family, side by side."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[3] / "scripts" / "layout_counts.py"


def _report(verdict: str, outcomes: list[tuple[str, str]]) -> dict[str, object]:
    probes = [{"id": f"p{i}", "family": f, "outcome": o} for i, (f, o) in enumerate(outcomes)]
    return {"verdict": verdict, "probes": probes}


def test_counts_by_family_for_both_layouts(tmp_path: Path) -> None:
    (tmp_path / "design-b.json").write_text(json.dumps(_report(
        "violated", [("sudo-wildcards", "escaped"), ("sudo-wildcards", "held"),
                     ("control", "held")])))  # fmt: skip
    (tmp_path / "design-b-nixos.json").write_text(json.dumps(_report(
        "violated", [("sudo-wildcards", "escaped"), ("sudo-wildcards", "escaped"),
                     ("control", "held"), ("helper-abuse", "not-applicable")])))  # fmt: skip
    (tmp_path / "hardened-nixos.json").write_text(json.dumps({"verdict": "error"}))  # no check
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True, check=True
    )
    lines = done.stdout.splitlines()
    assert "| design-b | sudo-wildcards | 1/1/0/0 | 2/0/0/0 |" in lines
    assert "| design-b | control | 0/1/0/0 | 0/1/0/0 |" in lines
    assert "| design-b | helper-abuse | - | 0/0/1/0 |" in lines
    assert "| design-b | **verdict** | violated | violated |" in lines
    assert not [line for line in lines if line.startswith("| hardened")]


def test_no_reports_is_an_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2 and "no lab reports" in done.stderr and done.stdout == ""
