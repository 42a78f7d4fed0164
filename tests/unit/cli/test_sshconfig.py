"""``ssh-config``, ``scp`` argument checks and name completion, on libvirt's test driver.

The blocks are parsed back by real OpenSSH (``ssh -G`` prints the options it would use
for a host and connects to nothing).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from stagingvm.errors import InvalidInputError
from stagingvm.ssh import sshconfig
from stagingvm.ssh.target import SSHTarget
from tests.unit.cli.conftest import Driver

TARGET = SSHTarget(
    host="192.168.150.23",
    port=22,
    user="root",
    key_path=Path("/var/lib/staging-vm/keys/id_ed25519"),
    known_hosts=Path("/var/lib/staging vm/vms/pr-42/known_hosts"),  # a blank: quoted
)


def openssh_options(config: str, alias: str, tmp_path: Path) -> dict[str, str]:
    """What OpenSSH itself makes of *config* for *alias* (``ssh -G``, no connection)."""
    ssh = shutil.which("ssh")
    if ssh is None:
        pytest.skip("OpenSSH client not installed")
    path = tmp_path / "ssh_config"
    path.write_text(config)
    out = subprocess.run(
        [ssh, "-G", "-F", str(path), alias], capture_output=True, text=True, check=True
    ).stdout
    options: dict[str, str] = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        options.setdefault(key, value)
    return options


def test_block_is_read_back_by_openssh_with_strict_pinning(tmp_path: Path) -> None:
    text = sshconfig.ssh_config([sshconfig.HostEntry("pr-42", TARGET)])
    opts = openssh_options(text, "pr-42", tmp_path)
    assert opts["hostname"] == "192.168.150.23"
    assert opts["user"] == "root"
    assert opts["port"] == "22"
    assert opts["identityfile"] == "/var/lib/staging-vm/keys/id_ed25519"
    assert opts["identitiesonly"] == "yes"
    assert opts["userknownhostsfile"] == "/var/lib/staging vm/vms/pr-42/known_hosts"
    assert opts["stricthostkeychecking"] in ("true", "yes")
    assert opts["passwordauthentication"] == "no"
    assert "StrictHostKeyChecking no" not in text and "accept-new" not in text


def test_two_vms_two_blocks(tmp_path: Path) -> None:
    other = SSHTarget("192.168.150.24", 2222, "ai-worker", TARGET.key_path, TARGET.known_hosts)
    text = sshconfig.ssh_config(
        [sshconfig.HostEntry("pr-42", TARGET), sshconfig.HostEntry("pr-43", other)]
    )
    opts = openssh_options(text, "pr-43", tmp_path)
    assert (opts["hostname"], opts["port"], opts["user"]) == ("192.168.150.24", "2222", "ai-worker")


def test_a_path_openssh_cannot_hold_is_refused() -> None:
    bad = SSHTarget("10.0.0.1", 22, "root", Path('/tmp/a"b'), TARGET.known_hosts)
    with pytest.raises(InvalidInputError):
        sshconfig.ssh_config([sshconfig.HostEntry("pr-42", bad)])


def test_ansible_inventory_pins_the_same_way() -> None:
    doc = sshconfig.ansible_inventory([sshconfig.HostEntry("pr-42", TARGET)])
    host = doc["all"]["children"]["stagingvm"]["hosts"]["pr-42"]  # type: ignore[index]
    assert host["ansible_host"] == "192.168.150.23"
    assert "StrictHostKeyChecking=yes" in host["ansible_ssh_common_args"]
    assert '"/var/lib/staging vm/vms/pr-42/known_hosts"' in host["ansible_ssh_common_args"]


def test_ssh_config_of_a_running_vm(vm1: Driver, tmp_path: Path) -> None:
    doc = vm1.json("status", "vm1")
    assert isinstance(doc, dict)
    result = vm1("ssh-config", "vm1")
    assert result.exit_code == 0, result.output
    opts = openssh_options(result.stdout, "vm1", tmp_path)
    assert opts["hostname"] == doc["ip"]
    assert opts["userknownhostsfile"] == str(vm1.data_dir / "vms" / "vm1" / "known_hosts")
    every = vm1("ssh-config")
    assert every.exit_code == 0 and every.stdout == result.stdout
    as_user = vm1("ssh-config", "ai-worker@vm1")
    assert openssh_options(as_user.stdout, "vm1", tmp_path)["user"] == "ai-worker"
    inventory = json.loads(vm1("ssh-config", "--ansible").stdout)
    assert list(inventory["all"]["children"]["stagingvm"]["hosts"]) == ["vm1"]


def test_ssh_config_errors(vm1: Driver) -> None:
    assert vm1("ssh-config", "nope").exit_code == 3
    assert vm1("ssh-config", "Bad_Name").exit_code == 2
    assert vm1("stop", "vm1", "--force").exit_code == 0
    stopped = vm1("ssh-config", "vm1")
    assert stopped.exit_code == 3
    assert "no IPv4 address" in stopped.stderr
    every = vm1("ssh-config")
    assert every.exit_code == 0
    assert every.stdout == ""
    assert "vm1 has no address" in every.stderr


def test_scp_needs_exactly_one_remote_side(td: Driver, tmp_path: Path) -> None:
    both_local = td("scp", str(tmp_path / "a"), str(tmp_path / "b"))
    assert both_local.exit_code == 2
    assert "exactly one of SOURCE and DEST" in both_local.stderr
    assert td("scp", "vm1:/a", "vm2:/b").exit_code == 2
    assert td("scp", "./a", "Bad_Name:/tmp/a").exit_code == 2
    assert td("scp", "nope:/etc/hostname", str(tmp_path)).exit_code == 3
    assert not (tmp_path / "hostname").exists()


def test_completion_of_vm_and_base_names_from_the_data_dir(vm1: Driver) -> None:
    vm1.add_base("hermes")

    def complete(words: str) -> list[str]:
        env = {
            **vm1.env,
            "_PR_TEST_VM_COMPLETE": "complete_zsh",
            "_TYPER_COMPLETE_ARGS": f"pr-test-vm --data-dir {vm1.data_dir} {words}",
            # No libvirt: a URI that cannot be reached must not matter.
            "STAGINGVM_URI": "qemu+ssh://nowhere.invalid/system",
        }
        result = vm1.cli([], env=env)
        assert result.exit_code == 0, result.output
        return result.stdout.split()

    assert '"vm1"' in " ".join(complete("status v"))
    assert '"vm1"' not in " ".join(complete("status x"))
    assert '"hermes"' in " ".join(complete("start new --base h"))
