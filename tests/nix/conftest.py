"""Fixtures for tests that run the real ``nix`` (Debian's nix-bin 2.8 in CI).

The test flake (fixtures/flake) needs no nixpkgs. Each test gets its own copy of it (nix would
otherwise see the repository's git tree and only its committed files) and a tiny qcow2 made
with qemu-img, named by FIXTURE_QCOW2, which the flake's fake image derivation copies.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from stagingvm.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if shutil.which("nix") is not None:
        return
    skip = pytest.mark.skip(reason="nix is not installed (apt-get install nix-bin)")
    for item in items:
        if "nix" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def flake_dir(tmp_path: Path) -> Path:
    dest = tmp_path / "flake"
    shutil.copytree(FIXTURES / "flake", dest)
    return dest


@pytest.fixture
def fake_nixpkgs(flake_dir: Path) -> Path:
    return flake_dir / "fakenixpkgs"


@pytest.fixture
def classic_config(tmp_path: Path) -> Path:
    dest = tmp_path / "classic"
    shutil.copytree(FIXTURES / "classic", dest)
    return dest / "configuration.nix"


@pytest.fixture
def test_image(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A real (tiny, empty) qcow2 that the fixture flake's derivation copies.

    Not under pytest's tmp_path: that is private to root (0700) and nix runs builders as the
    nixbld users, who must be able to read the file.
    """
    folder = Path(tempfile.mkdtemp(prefix="stagingvm-nix-test-"))
    try:
        folder.chmod(0o755)
        image = folder / "tiny.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "8M"], check=True)
        image.chmod(0o644)
        monkeypatch.setenv("FIXTURE_QCOW2", str(image))
        yield image
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")
