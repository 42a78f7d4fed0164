"""``stagingvm.nixbuild.build`` against the real nix on the nixpkgs-free fixture flake."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from stagingvm.errors import BuildError, NotFoundError, ToolMissingError, WaitTimeoutError
from stagingvm.nixbuild.build import build_target, find_image, find_nix, nix_data_file
from stagingvm.settings import Settings

pytestmark = pytest.mark.nix

# No binary cache (none is reachable here) and no sandbox (Debian's nix has none).
NIX_OPTIONS = [("substituters", ""), ("sandbox", "false")]


class RecordingProgress:
    def __init__(self) -> None:
        self.phases: list[str] = []
        self.notes: list[str] = []

    @contextmanager
    def _phase(self, description: str) -> Iterator[None]:
        self.phases.append(description)
        yield

    def phase(self, description: str) -> AbstractContextManager[None]:
        return self._phase(description)

    def note(self, message: str) -> None:
        self.notes.append(message)


def record(store_path: str) -> dict[str, object]:
    return json.loads((Path(store_path) / "record.json").read_text())


def test_nix_version_is_detected() -> None:
    tool = find_nix()
    assert Path(tool.path).name == "nix"
    assert tool.version.split(".")[0].isdigit()


def test_flake_host_builds_images_qemu(
    flake_dir: Path, test_image: Path, settings: Settings
) -> None:
    progress = RecordingProgress()
    result = build_target(f"{flake_dir}#x", settings, nix_options=NIX_OPTIONS, progress=progress)
    assert result.name == "x"
    assert result.store_path.startswith("/nix/store/")
    assert result.image == Path(result.store_path) / "nixos.qcow2"
    assert result.image.read_bytes() == test_image.read_bytes()
    assert result.format == "qcow2"
    # The guest module and its options reached extendModules, as data.
    rec = record(result.store_path)
    assert rec["guestModule"] == str(nix_data_file("guest.nix"))
    assert rec["guest"] == {"users": ["ai-worker"], "replaceBoot": True, "forceDHCP": True}
    # GC root in the data dir, pointing at the output.
    assert result.out_link == settings.data_dir / "gcroots" / "x"
    assert os.path.realpath(result.out_link) == result.store_path
    # Full log kept; progress saw the derivation nix built and the builder's own line.
    assert result.log.parent == settings.logs_dir
    log = result.log.read_text()
    assert "fixture-x> building fixture image" in log
    assert any("nix build" in p for p in progress.phases)
    assert progress.notes == ["building fixture-x"]


def test_second_build_reuses_the_store_path(
    flake_dir: Path, test_image: Path, settings: Settings
) -> None:
    first = build_target(f"{flake_dir}#x", settings, nix_options=NIX_OPTIONS)
    progress = RecordingProgress()
    second = build_target(f"{flake_dir}#x", settings, nix_options=NIX_OPTIONS, progress=progress)
    assert second.store_path == first.store_path
    assert progress.notes == []  # nothing was built the second time


def test_old_nixpkgs_falls_back_to_make_disk_image(
    flake_dir: Path, test_image: Path, settings: Settings
) -> None:
    result = build_target(f"{flake_dir}#old", settings, nix_options=NIX_OPTIONS, name="old-1")
    rec = record(result.store_path)
    # The fake make-disk-image.nix has the real parameter names and no `...`: these
    # arrived and nothing unknown did.
    assert rec["format"] == "qcow2"
    assert rec["partitionTableType"] == "legacy"
    assert rec["host"] == "old"
    assert result.out_link == settings.data_dir / "gcroots" / "old-1"


def test_host_name_full_of_nix_syntax_stays_data(
    flake_dir: Path, test_image: Path, settings: Settings
) -> None:
    result = build_target(f'{flake_dir}#we"ird ${{x}}', settings, nix_options=NIX_OPTIONS)
    assert record(result.store_path)["host"] == "weird"
    assert result.name == "we-ird-x"


def test_hostile_host_cannot_inject_code(
    flake_dir: Path, test_image: Path, settings: Settings
) -> None:
    hostile = 'x; }; y = builtins.abort "INJECTED"; z = { '
    with pytest.raises(BuildError) as err:
        build_target(f"{flake_dir}#{hostile}", settings, nix_options=NIX_OPTIONS, name="h")
    tail = "\n".join(err.value.log_tail)
    # The whole text was looked up as one attribute name; abort never ran.
    assert f'has no nixosConfigurations."{hostile}"' in tail
    assert "aborted" not in tail


def test_classic_configuration_with_nixpkgs_path(
    classic_config: Path, fake_nixpkgs: Path, test_image: Path, settings: Settings
) -> None:
    result = build_target(
        str(classic_config), settings, nix_options=NIX_OPTIONS, nixpkgs=fake_nixpkgs
    )
    assert result.name == "classic"  # the folder of configuration.nix
    rec = record(result.store_path)
    assert rec["configuration"] == str(classic_config)
    assert rec["guestModule"] == str(nix_data_file("guest.nix"))


def test_classic_configuration_through_nix_path(
    classic_config: Path,
    fake_nixpkgs: Path,
    test_image: Path,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NIX_PATH", f"nixpkgs={fake_nixpkgs}")
    result = build_target(str(classic_config.parent), settings, nix_options=NIX_OPTIONS)
    assert record(result.store_path)["configuration"] == str(classic_config)


def test_hostile_configuration_path_stays_data(
    tmp_path: Path, fake_nixpkgs: Path, test_image: Path, settings: Settings
) -> None:
    weird = tmp_path / 'a"b ${builtins.abort "INJECTED"}.nix'
    weird.write_text("{ ... }: { }\n")
    result = build_target(
        str(weird), settings, nix_options=NIX_OPTIONS, nixpkgs=fake_nixpkgs, name="weird"
    )
    assert record(result.store_path)["configuration"] == str(weird)


def test_failed_build_raises_with_log_tail(
    flake_dir: Path, test_image: Path, settings: Settings
) -> None:
    with pytest.raises(BuildError) as err:
        build_target(f"{flake_dir}#broken", settings, nix_options=NIX_OPTIONS)
    assert err.value.exit_code == 9
    assert any("this build fails on purpose" in line for line in err.value.log_tail)
    assert err.value.hint is not None and "full log" in err.value.hint
    logs = list(settings.logs_dir.glob("nix-broken-*.log"))
    assert len(logs) == 1


def test_time_out_kills_nix_and_its_builder(
    flake_dir: Path, test_image: Path, settings: Settings
) -> None:
    started = time.monotonic()
    with pytest.raises(WaitTimeoutError) as err:
        build_target(f"{flake_dir}#slow", settings, nix_options=NIX_OPTIONS, timeout=3)
    assert err.value.phase == "nix build"
    assert time.monotonic() - started < 60
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        if "/bin/sleep 120" not in ps:
            break
        time.sleep(0.2)
    assert "/bin/sleep 120" not in ps


def test_missing_flake_and_host_are_reported(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(NotFoundError):
        build_target(f"{tmp_path}#x", settings)


def test_no_nix_on_path_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flake_dir: Path, settings: Settings
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ToolMissingError) as err:
        build_target(f"{flake_dir}#x", settings)
    assert "build --image PATH" in str(err.value)
    assert err.value.exit_code == 12


def test_find_image_refuses_products_outside_the_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "nix-support").mkdir(parents=True)
    secret = tmp_path / "secret.qcow2"
    secret.write_bytes(b"x")
    (out / "nix-support" / "hydra-build-products").write_text(f"file qcow2-image {secret}\n")
    with pytest.raises(BuildError):
        find_image(out)


def test_find_image_prefers_qcow2_and_ignores_other_products(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "nix-support").mkdir(parents=True)
    for name in ("disk.img", "disk.qcow2", "notes.txt"):
        (out / name).write_bytes(b"x")
    (out / "nix-support" / "hydra-build-products").write_text(
        f"file raw-image {out}/disk.img\nfile doc {out}/notes.txt\n"
        f"file qcow2-image {out}/disk.qcow2\n"
    )
    assert find_image(out) == ((out / "disk.qcow2").resolve(), "qcow2")
