"""docs/restrictions.md lists every probe of the battery (generated, checked for staleness)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from stagingvm.checks.catalog import all_probes

ROOT = Path(__file__).resolve().parents[3]


def test_probe_catalogue_in_docs_is_current() -> None:
    spec = importlib.util.spec_from_file_location("gen", ROOT / "scripts/gen_restrictions_docs.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    current = (ROOT / "docs/restrictions.md").read_text(encoding="utf-8")
    assert gen.render(current) == current, (
        "docs/restrictions.md is stale: run `python scripts/gen_restrictions_docs.py`"
    )
    for probe in all_probes():
        assert f"`{probe.id}`" in current
