"""``pr-test-vm image build|list|rm`` through the real CLI, with a quick real builder."""

from __future__ import annotations

import json
from pathlib import Path

from stagingvm.images import Recipe, register_recipe
from tests.unit.conftest import Invoke
from tests.unit.images.builders import CALLS, counting_builder  # registers unit-counter

register_recipe(
    "unit-cli",
    lambda: Recipe(name="unit-cli", builder="unit-counter", description="CLI test recipe"),
    replace=True,
)
assert counting_builder  # the builder the recipe uses


def test_build_list_rm(cli: Invoke, tmp_path: Path) -> None:
    env = {"STAGINGVM_DATA_DIR": str(tmp_path / "data")}
    CALLS.clear()
    built = cli(["image", "build", "unit-cli"], env=env)
    assert built.exit_code == 0, built.stderr
    path = Path(built.stdout.strip())
    assert path.is_file() and path.name == "disk.qcow2"
    again = cli(["image", "build", "unit-cli", "--json"], env=env)
    assert again.exit_code == 0 and CALLS == ["unit-cli"]
    doc = json.loads(again.stdout)
    assert doc["path"] == str(path) and doc["manifest"]["name"] == "unit-cli"

    listed = cli(["image", "list", "--json"], env=env)
    entries = json.loads(listed.stdout)
    assert [(e["name"], e["current"]) for e in entries] == [("unit-cli", True)]

    recipes = json.loads(cli(["image", "list", "--recipes", "--json"], env=env).stdout)
    names = {r["name"] for r in recipes}
    assert {"tiny", "debian", "debian-docker", "unit-cli"} <= names

    removed = cli(["image", "rm", "unit-cli"], env=env)
    assert removed.exit_code == 0 and not path.exists()
    assert json.loads(cli(["image", "list", "--json"], env=env).stdout) == []


def test_unknown_recipe_and_image_are_not_found(cli: Invoke, tmp_path: Path) -> None:
    env = {"STAGINGVM_DATA_DIR": str(tmp_path / "data")}
    result = cli(["image", "build", "no-such-recipe"], env=env)
    assert result.exit_code == 3
    assert "no image recipe named" in result.stderr and "tiny" in result.stderr
    assert cli(["image", "rm", "nothing"], env=env).exit_code == 3
