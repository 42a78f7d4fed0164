"""``pr-test-vm gc`` through the CLI on libvirt's test driver: shows by default, removes with
--yes, --json on stdout, contradictory or bad options are exit 2."""

from __future__ import annotations

import json

from stagingvm.vm.start import STARTING_MARKER
from tests.unit.cli.conftest import Driver


def test_gc_shows_then_removes_a_killed_start(vm1: Driver) -> None:
    (vm1.data_dir / "vms" / "vm1" / STARTING_MARKER).write_text("")  # as a killed start leaves
    shown = vm1("gc")
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.startswith("would remove vm vm1: its start never finished")
    assert "gc --yes" in shown.stderr
    assert json.loads(vm1("list", "--json").stdout)[0]["name"] == "vm1"  # untouched

    done = vm1("gc", "--yes", "--json")
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert doc["dry_run"] is False
    assert [(x["kind"], x["name"]) for x in doc["removed"]] == [("vm", "vm1")]
    assert json.loads(vm1("list", "--json").stdout) == []
    again = vm1("gc", "--dry-run", "--json")
    assert json.loads(again.stdout)["found"] == []


def test_gc_older_than(vm1: Driver) -> None:
    assert json.loads(vm1("gc", "--older-than", "1d", "--json").stdout)["found"] == []
    doc = json.loads(vm1("gc", "--older-than", "1s", "--json").stdout)
    assert doc["found"] == [] or doc["found"][0]["name"] == "vm1"  # created within this second


def test_gc_bad_options(td: Driver) -> None:
    both = td("gc", "--yes", "--dry-run")
    assert both.exit_code == 2 and "contradict" in both.stderr
    bad = td("gc", "--older-than", "soon")
    assert bad.exit_code == 2 and "invalid duration" in bad.stderr
