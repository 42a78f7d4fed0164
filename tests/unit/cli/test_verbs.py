"""Every verb through the CLI on libvirt's test driver: exit codes, --json, stdout vs stderr.

The CLI opens ``test:///.../tests/testdriver.xml`` itself (through ``--uri``); all invocations
of one test share the cached connection and so see one world, which is forgotten afterwards.
Nothing here waits for a guest (``--no-wait``): the test driver's made-up addresses must never
be contacted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from stagingvm.cli.app import report_error
from stagingvm.cli.output import Output
from stagingvm.errors import WaitTimeoutError
from stagingvm.settings import Settings
from stagingvm.vm.manager import login_key
from tests.unit.cli.conftest import TESTDRIVER_URI, Driver

Invoke = Callable[..., Result]


def test_start_prints_message_on_stderr_only(td: Driver) -> None:
    td.add_base("base1")
    result = td("start", "vm1", "--base", "base1", "--no-wait")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "vm1 is running" in result.stderr


def test_start_json_is_the_status_document(td: Driver) -> None:
    td.add_base("base1")
    result = td(
        "start", "vm2", "--base", "base1", "--no-wait", "--memory", "512", "--vcpus", "1", "--json"
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["name"] == "vm2"
    assert doc["state"] == "running"
    assert (doc["memory_mib"], doc["vcpus"], doc["base"]) == (512, 1, "base1")
    assert doc["domain_type"] == "qemu"
    assert doc["mac"].startswith("52:54:00:")


def test_start_twice_is_a_conflict(vm1: Driver) -> None:
    result = vm1("start", "vm1", "--base", "base1", "--no-wait")
    assert result.exit_code == 6
    assert result.stderr.startswith("error: a VM (libvirt domain) named 'vm1' already exists")
    assert "hint: " in result.stderr


def test_start_without_base_is_not_found(td: Driver) -> None:
    result = td("start", "vm1", "--no-wait")
    assert result.exit_code == 3
    assert "error: no base image 'vm1'" in result.stderr
    assert (
        "hint: import one first: `pr-test-vm build --image DISK.qcow2 --name vm1`" in result.stderr
    )
    assert td.json("list") == []  # nothing half-made is left


def test_list_json_shows_only_stagingvm_vms(vm1: Driver) -> None:
    docs = vm1.json("list")
    assert isinstance(docs, list)
    assert [d["name"] for d in docs] == ["vm1"]  # not the test driver's foreign-vm
    assert docs[0]["pr_ref"] == "pull/42/head"
    assert docs[0]["label"] == "ci run 7"


def test_list_table(vm1: Driver) -> None:
    result = vm1("list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    header = ["NAME", "STATE", "IP", "VCPUS", "MEMORY", "AGE", "BASE", "SNAPSHOTS"]
    assert lines[0].split() == header
    row = next(line for line in lines if line.startswith("vm1"))
    cells = row.split()
    assert cells[1] == "running"
    assert cells[-2:] == ["base1", "-"]
    assert "2048 MiB" in row
    assert "foreign-vm" not in result.stdout
    assert result.stderr == ""
    # Piped: plain columns for grep/awk, no box drawing, no trailing blanks.
    assert "─" not in result.stdout
    assert all(line == line.rstrip() for line in lines)
    assert row.index("running") == lines[0].index("STATE")


def test_list_empty(td: Driver) -> None:
    result = td("list")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no stagingvm VMs" in result.stderr


def test_status_json_and_text(vm1: Driver) -> None:
    doc = vm1.json("status", "vm1")
    assert isinstance(doc, dict)
    assert doc["name"] == "vm1"
    assert doc["console_log"] == str(vm1.data_dir / "vms" / "vm1" / "console.log")
    text = vm1("status", "vm1")
    assert text.exit_code == 0
    fields = dict(line.split(":", 1) for line in text.stdout.splitlines())
    assert fields["name"].strip() == "vm1"
    assert fields["state"].strip() == "running"
    assert fields["PR ref"].strip() == "pull/42/head"
    assert fields["MAC"].strip() == doc["mac"]
    assert fields["base image"].strip() == "base1"
    assert text.stderr == ""


def test_status_of_missing_and_foreign_vms(td: Driver) -> None:
    missing = td("status", "nope")
    assert missing.exit_code == 3
    assert missing.stderr.splitlines()[0] == "error: no VM named 'nope'"
    foreign = td("status", "foreign-vm")
    assert foreign.exit_code == 3
    assert "not managed by stagingvm" in foreign.stderr
    assert td("destroy", "foreign-vm").exit_code == 3
    assert td("stop", "foreign-vm", "--force").exit_code == 3


def test_stop_then_ssh_has_no_address(vm1: Driver) -> None:
    result = vm1("stop", "vm1", "--timeout", "5")
    assert result.exit_code == 0, result.output
    assert "vm1 is shut off" in result.stderr
    assert vm1.json("status", "vm1")["state"] == "shut off"  # type: ignore[index]
    ssh = vm1("ssh", "vm1", "--", "true")
    assert ssh.exit_code == 3
    assert "has no IPv4 address" in ssh.stderr


def test_stop_force(vm1: Driver) -> None:
    result = vm1("stop", "vm1", "--force")
    assert result.exit_code == 0, result.output
    assert vm1.json("status", "vm1")["state"] == "shut off"  # type: ignore[index]


def test_rebuild_keeps_name_and_mac(vm1: Driver) -> None:
    before = vm1.json("status", "vm1")
    result = vm1("rebuild", "vm1", "--no-wait", "--json")
    assert result.exit_code == 0, result.output
    after = json.loads(result.stdout)
    assert isinstance(before, dict)
    assert (after["name"], after["mac"], after["base"]) == ("vm1", before["mac"], "base1")
    assert after["pr_ref"] == "pull/42/head"
    assert vm1("rebuild", "nope", "--no-wait").exit_code == 3


def test_destroy_removes_everything(vm1: Driver) -> None:
    vm_dir = vm1.data_dir / "vms" / "vm1"
    assert vm_dir.is_dir()
    result = vm1("destroy", "vm1")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "vm1 is destroyed" in result.stderr
    assert vm1.json("list") == []
    assert not vm_dir.exists()
    again = vm1("destroy", "vm1")
    assert again.exit_code == 3
    assert "no VM named 'vm1'" in again.stderr


def test_quiet_suppresses_messages(vm1: Driver) -> None:
    result = vm1.cli(
        ["-q", "--uri", TESTDRIVER_URI, "--data-dir", str(vm1.data_dir), "destroy", "vm1"],
        env=vm1.env,
    )
    assert result.exit_code == 0
    assert result.stderr == ""
    assert result.stdout == ""


def test_libvirt_unreachable_exit_4_with_hint(cli: Invoke, tmp_path: Path) -> None:
    uri = f"qemu+unix:///system?socket={tmp_path}/no-such-libvirt-sock"
    result = cli(["--uri", uri, "--data-dir", str(tmp_path / "d"), "list"])
    assert result.exit_code == 4
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"error: cannot connect to libvirt at {uri}")
    assert lines[-1].startswith("hint: start libvirtd")
    assert result.stdout == ""
    status = cli(["--uri", uri, "--data-dir", str(tmp_path / "d"), "status", "vm1", "--json"])
    assert status.exit_code == 4
    assert status.stdout == ""


def test_wait_errors_show_phase_time_and_console(capsys: pytest.CaptureFixture[str]) -> None:
    exc = WaitTimeoutError(
        "vm1 got no DHCP lease within 120 s",
        phase="DHCP lease",
        elapsed=120.04,
        console_tail=["[  OK  ] Reached target Network.", "login: <"],
        hint="is DHCP running in the guest? `pr-test-vm console vm1 --log`",
    )
    report_error(Output(), exc)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "error: vm1 got no DHCP lease within 120 s",
        "  phase: DHCP lease",
        "  time spent: 120.0 s",
        "  last 2 console lines:",
        "    | [  OK  ] Reached target Network.",
        "    | login: <",
        "hint: is DHCP running in the guest? `pr-test-vm console vm1 --log`",
    ]


def test_ssh_separator_is_not_sent_to_the_guest() -> None:
    from stagingvm.cli.cmd_access import remote_argv

    assert remote_argv(["--", "sh", "-c", "exit 3"]) == ["sh", "-c", "exit 3"]
    assert remote_argv(["uname", "--", "x"]) == ["uname", "--", "x"]
    assert remote_argv(["--"]) is None
    assert remote_argv(None) is None
    assert remote_argv([]) is None


def _domain_xml(td: Driver, name: str) -> str:
    from stagingvm.virt.connection import connect

    return str(connect(TESTDRIVER_URI).lookupByName(name).XMLDesc(0))


def test_start_user_key_gives_the_user_a_key_of_its_own(td: Driver) -> None:
    td.add_base("base1")
    result = td("start", "vm1", "--base", "base1", "--no-wait", "--user-key", "ai-worker")
    assert result.exit_code == 0, result.output
    key = td.data_dir / "keys" / "id_ed25519_ai-worker"
    assert key.stat().st_mode & 0o777 == 0o600
    public = (key.parent / (key.name + ".pub")).read_text().strip()
    assert public.startswith("ssh-ed25519 ")
    xml = _domain_xml(td, "vm1")
    assert f"io.systemd.credential:stagingvm.authorized_keys.ai-worker={public}" in xml
    settings = Settings(uri=TESTDRIVER_URI, data_dir=td.data_dir)
    assert login_key(settings, "ai-worker") == key  # `ssh ai-worker@vm1` and `check` use it
    assert login_key(settings, "root") == settings.ssh_key_path
    assert login_key(settings, "nobody") == settings.ssh_key_path  # no key of its own


def test_start_user_key_with_a_bad_user_name_creates_nothing(td: Driver) -> None:
    td.add_base("base1")
    result = td("start", "vm1", "--base", "base1", "--no-wait", "--user-key", "Bad;Name")
    assert result.exit_code == 2
    assert "error: invalid user name 'Bad;Name'" in result.stderr
    assert td.json("list") == []
    assert not (td.data_dir / "keys").exists() or not list((td.data_dir / "keys").iterdir())


def test_check_with_an_unknown_family_is_bad_input_before_any_login(td: Driver) -> None:
    result = td("check", "vm1", "--family", "sudo-wildcard")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: unknown probe family: sudo-wildcard\n")
    assert "hint: families: control, wrapper-parsing" in result.stderr
    assert result.stdout == ""
