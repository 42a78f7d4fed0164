"""docs/cli.md is generated from --help and must be current; docs cover every setting."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

from stagingvm.config.keys import KEYS, env_var_for

ROOT = Path(__file__).resolve().parents[3]


def _script(name: str) -> ModuleType:
    """scripts/NAME.py, loaded as a module."""
    spec = importlib.util.spec_from_file_location(name, ROOT / f"scripts/{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _generator() -> ModuleType:
    return _script("gen_cli_docs")


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


def test_man_page_is_current() -> None:
    current = (ROOT / "man/pr-test-vm.1").read_text(encoding="utf-8")
    assert current == _script("gen_man_page").render(), (
        "man/pr-test-vm.1 is stale: regenerate it with `python scripts/gen_man_page.py`"
    )


def test_man_page_renders_every_verb_without_warnings(tmp_path: Path) -> None:
    """`man -l` (or groff) formats the page with no warning, and each verb is in it."""
    import shutil
    import subprocess

    from stagingvm.cli import exitcodes

    page = ROOT / "man/pr-test-vm.1"
    groff = shutil.which("groff")
    if groff is None:
        pytest.skip("groff is not installed")
    env = {"LC_ALL": "C.UTF-8", "PATH": os.environ["PATH"]}
    done = subprocess.run(  # -P-cbou: plain text, no overstriking for bold and underline
        [groff, "-t", "-man", "-Tutf8", "-ww", "-P-cbou", str(page)],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 0 and done.stderr == "", done.stderr
    text = done.stdout
    for verb in exitcodes.VERBS:
        assert f"pr-test-vm {verb} [OPTIONS]" in text, verb
    assert "EXIT STATUS" in text and "LIBVIRT_DEFAULT_URI" in text


def test_the_wheel_and_the_sdist_ship_the_man_page() -> None:
    import tomllib

    hatch = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    shared = hatch["targets"]["wheel"]["shared-data"]
    assert shared == {"man/pr-test-vm.1": "share/man/man1/pr-test-vm.1"}
    assert "man" in hatch["targets"]["sdist"]["include"]
