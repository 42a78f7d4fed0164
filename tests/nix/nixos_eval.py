"""Evaluate nix/module.nix and nix/guest.nix with nixpkgs' real ``lib.evalModules``.

nixpkgs' ``lib`` is found at ``$STAGINGVM_NIXPKGS_LIB`` or ``<repo>/../shared/vendor/nixpkgs-lib``
(CI has ``shared/`` beside its clean clone); a user's own clone has neither, and the tests that
need it skip, saying so. The declarations they evaluate against are in ``nixos_decls/``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DECLS = Path(__file__).parent / "nixos_decls"
CASES = DECLS / "cases"
ENV_VAR = "STAGINGVM_NIXPKGS_LIB"


def nixpkgs_lib() -> Path | None:
    """The folder holding nixpkgs' lib/ (the one with default.nix), or None."""
    given = os.environ.get(ENV_VAR)
    base = Path(given) if given else ROOT.parent / "shared" / "vendor" / "nixpkgs-lib"
    for candidate in (base / "lib", base):
        if (candidate / "default.nix").is_file() and (candidate / "modules.nix").is_file():
            return candidate
    return None


def require_lib() -> Path:
    lib = nixpkgs_lib()
    if lib is None:
        pytest.skip(
            f"nixpkgs' lib not found: set {ENV_VAR} or put shared/vendor/nixpkgs-lib beside "
            "the repository (these tests evaluate the NixOS modules with nixpkgs' real lib)"
        )
    if shutil.which("nix-instantiate") is None:
        pytest.skip("nix-instantiate is not installed (apt-get install nix-bin)")
    return lib


@dataclass(frozen=True)
class Evaluation:
    failed_assertions: list[str]
    warnings: list[str]
    values: dict[str, Any]
    declared: list[str]


class EvalFailed(Exception):
    def __init__(self, stderr: str) -> None:
        super().__init__(stderr)
        self.stderr = stderr


def evaluate(
    module: str, case: Path, libvirtd: str = "25.11", version: str | None = None
) -> Evaluation:
    """Run eval.nix for one case; raise EvalFailed with nix's message if it does not evaluate.

    *version* stands in for ``lib.version`` (e.g. "25.11pre-git", as an unstable channel
    reports it); None keeps the vendored lib's own.
    """
    lib = require_lib()
    argv = [
        "nix-instantiate",
        "--eval",
        "--strict",
        "--json",
        str(DECLS / "eval.nix"),
        "--arg",
        "libPath",
        str(lib),
        "--argstr",
        "module",
        module,
        "--argstr",
        "libvirtd",
        libvirtd,
        "--arg",
        "case",
        str(case.resolve()),
    ]
    if version is not None:
        argv += ["--argstr", "version", version]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise EvalFailed(done.stderr)
    doc = json.loads(done.stdout)
    return Evaluation(doc["failedAssertions"], doc["warnings"], doc["values"], doc["declared"])


def doc_block(doc: Path, marker: str) -> str:
    """The fenced code block between ``<!-- MARKER:start -->`` and ``<!-- MARKER:end -->``."""
    text = doc.read_text()
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    assert text.count(start) == 1 and text.count(end) == 1, f"{doc}: markers {marker!r}"
    inner = text.split(start, 1)[1].split(end, 1)[0].strip("\n")
    lines = inner.splitlines()
    assert lines[0].startswith("```") and lines[-1] == "```", f"{doc}: {marker} is not one block"
    return "\n".join(lines[1:-1]) + "\n"
