"""Every .nix file of the repository parses (``nix-instantiate --parse``, no nixpkgs needed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NIX_FILES = sorted(p for p in ROOT.rglob("*.nix") if ".git" not in p.parts)


def test_the_repository_has_nix_files() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in NIX_FILES}
    assert {"nix/guest.nix", "nix/build-image.nix", "nix/module.nix", "nix/flake.nix"} <= names


@pytest.mark.nix
@pytest.mark.parametrize("path", NIX_FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_nix_file_parses(path: Path) -> None:
    done = subprocess.run(["nix-instantiate", "--parse", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
