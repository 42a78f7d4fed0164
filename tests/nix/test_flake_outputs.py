"""nix/flake.nix evaluates, with the real nix, against a stand-in nixpkgs (none is reachable).

This checks the flake's wiring and what nix/package.nix hands to buildPythonApplication; it
cannot check NixOS itself (the module-eval check needs the real nixpkgs, see docs/nixos.md).
The repository's nix/ and pyproject.toml are copied into a fresh git repository so the flake
is read as `git+file://…?dir=nix`, the way users refer to it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.nix

ROOT = Path(__file__).resolve().parents[2]
FAKE_NIXPKGS = Path(__file__).parent / "fixtures" / "fake-nixpkgs-flake"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    dest = tmp_path / "stagingvm"
    shutil.copytree(ROOT / "nix", dest / "nix")
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    git = ["git", "-C", str(dest), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "snapshot"], check=True)
    fake = tmp_path / "fake-nixpkgs"
    shutil.copytree(FAKE_NIXPKGS, fake)
    return dest


def nix_eval(repo: Path, attr: str, apply: str | None = None) -> object:
    argv = [
        "nix",
        "--extra-experimental-features",
        "nix-command flakes",
        "eval",
        "--json",
        "--no-write-lock-file",
        "--option",
        "substituters",
        "",
        "--override-input",
        "nixpkgs",
        f"path:{repo.parent / 'fake-nixpkgs'}",
        "--override-input",
        "nixpkgs-previous",
        f"path:{repo.parent / 'fake-nixpkgs'}",
        f"git+file://{repo}?dir=nix#{attr}",
    ]
    if apply is not None:
        argv += ["--apply", apply]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_package_is_built_from_the_pyproject(repo: Path) -> None:
    pkg = nix_eval(
        repo,
        "packages.x86_64-linux.stagingvm",
        "p: { inherit (p) pname version pyproject build-system propagatedBuildInputs "
        "enabledTestPaths pythonImportsCheck makeWrapperArgs nativeBuildInputs postInstall; "
        "main = p.meta.mainProgram; "
        "oldFlags = p ? pytestFlagsArray; }",
    )
    assert isinstance(pkg, dict)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert pkg["pname"] == project["name"] and pkg["version"] == project["version"]
    assert pkg["pyproject"] is True and pkg["build-system"] == ["hatchling"]
    assert pkg["propagatedBuildInputs"] == ["libvirt-python", "typer", "rich", "paramiko"]
    # The check runs the unit tests, selected the way pytestCheckHook takes them today
    # (pytestFlagsArray throws in nixpkgs since PR #513772).
    assert pkg["enabledTestPaths"] == ["tests/unit"]
    # Shell completion files for the three shells, made by the CLI itself (Typer's protocol).
    assert pkg["nativeBuildInputs"] == ["install-shell-files"]
    for shell in ("bash", "zsh", "fish"):
        assert (
            f"--{shell} <(_PR_TEST_VM_COMPLETE=source_{shell} $out/bin/pr-test-vm)"
            in (pkg["postInstall"])
        )
    # The generated man page, installed the nixpkgs way (installShellFiles' installManPage).
    assert "installManPage man/pr-test-vm.1" in pkg["postInstall"]
    assert (ROOT / "man" / "pr-test-vm.1").is_file()
    assert pkg["oldFlags"] is False
    assert pkg["main"] == "pr-test-vm"
    assert "qemu-utils/bin" in pkg["makeWrapperArgs"][-1]


def test_default_package_app_and_modules(repo: Path) -> None:
    app = nix_eval(repo, "apps.x86_64-linux.default.program")
    assert isinstance(app, str) and app.endswith("-stagingvm/bin/pr-test-vm")
    assert nix_eval(repo, "packages.aarch64-linux.default.pname") == "stagingvm"
    assert nix_eval(repo, "nixosModules", "builtins.attrNames") == ["ai-worker", "default", "guest"]
    assert nix_eval(repo, "checks.x86_64-linux", "builtins.attrNames") == [
        "module-eval",
        "module-eval-previous",
        "stagingvm",
    ]


def test_flake_pins_the_current_stable_and_the_one_before() -> None:
    text = (ROOT / "nix" / "flake.nix").read_text()
    assert 'inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";' in text
    assert 'inputs.nixpkgs-previous.url = "github:NixOS/nixpkgs/nixos-25.11";' in text
