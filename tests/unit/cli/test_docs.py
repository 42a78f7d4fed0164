"""docs/cli.md is generated from --help and must be current; docs cover every setting."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from stagingvm.config.keys import KEYS, env_var_for

ROOT = Path(__file__).resolve().parents[3]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli_docs", ROOT / "scripts/gen_cli_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_md_is_current() -> None:
    gen = _generator()
    expected = gen.render()
    current = (ROOT / "docs/cli.md").read_text(encoding="utf-8")
    assert current == expected, (
        "docs/cli.md is stale: regenerate it with `/work/venv/bin/python scripts/gen_cli_docs.py`"
        " (or `python scripts/gen_cli_docs.py` in your venv) and commit the result"
    )


def test_cli_md_lists_every_exit_code() -> None:
    text = (ROOT / "docs/cli.md").read_text(encoding="utf-8")
    codes = [code for code, _ in _generator().exit_code_rows()]
    assert codes[:3] == ["0", "1", "2"] and "130" in codes
    for code in codes:
        assert f"\n| {code} | " in text


def test_configuration_md_covers_every_setting() -> None:
    text = (ROOT / "docs/configuration.md").read_text(encoding="utf-8")
    for spec in KEYS:
        assert f"`{spec.key}`" in text, spec.key
        assert f"`{env_var_for(spec.key)}`" in text, spec.key
        if spec.nixos:
            assert f"`{spec.nixos}`" in text, spec.nixos
