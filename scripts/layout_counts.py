"""Counts by family of the policy lab's reports, the two layouts side by side (Markdown).

usage: python scripts/layout_counts.py [ARTIFACTS_DIR]   (default /var/tmp/stagingvm-e2e/artifacts)

Reads DESIGN.json and DESIGN-nixos.json as the e2e suite keeps them (tests/e2e/test_checks_lab.py)
and prints, per design and family, "escaped/held/n-a/error" for each layout. docs/restrictions.md's
side-by-side table is this script's output.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

DESIGNS = ("design-a", "design-b", "hardened")
COLUMNS = ("escaped", "held", "not-applicable", "error")


def counts(report: dict[str, Any]) -> dict[str, Counter[str]]:
    out: dict[str, Counter[str]] = {}
    for probe in report["probes"]:
        out.setdefault(probe["family"], Counter())[probe["outcome"]] += 1
    return out


def cell(c: Counter[str] | None) -> str:
    return "/".join(str(c[k]) for k in COLUMNS) if c is not None else "-"


def table(reports: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| design | family | Debian layout | NixOS layout |",
        "|---|---|---|---|",
    ]
    for design in DESIGNS:
        deb, nix = reports.get(design), reports.get(f"{design}-nixos")
        if deb is None and nix is None:
            continue
        a, b = counts(deb) if deb else {}, counts(nix) if nix else {}
        for family in dict.fromkeys([*a, *b]):
            lines.append(f"| {design} | {family} | {cell(a.get(family))} | {cell(b.get(family))} |")
        verdicts = [r["verdict"] if r else "-" for r in (deb, nix)]
        lines.append(f"| {design} | **verdict** | {verdicts[0]} | {verdicts[1]} |")
    return lines


def main(argv: list[str]) -> int:
    # Only read: the e2e suite's artifacts folder (tests/e2e/harness.py ARTIFACTS_DIR).
    folder = Path(argv[1] if len(argv) > 1 else "/var/tmp/stagingvm-e2e/artifacts")  # noqa: S108
    reports = {}
    for design in DESIGNS:
        for name in (design, f"{design}-nixos"):
            path = folder / f"{name}.json"
            if path.exists():
                report = json.loads(path.read_text(encoding="utf-8"))
                if "probes" in report:  # a run that stopped before the check has none
                    reports[name] = report
    if not reports:
        print(f"error: no lab reports in {folder}", file=sys.stderr)
        return 2
    print("cells: escaped/held/not applicable/error")
    print()
    print("\n".join(table(reports)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
