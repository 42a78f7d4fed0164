"""nix/module.nix and nix/guest.nix evaluated by nixpkgs' real module system.

Against declarations of the NixOS options they touch (tests/nix/nixos_decls/, each citing the
nixpkgs file it follows), so an option name, type or priority that does not match nixpkgs
fails here. Skips, saying why, without ../shared/vendor/nixpkgs-lib (see nixos_eval.py).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.nix.nixos_eval import CASES, ROOT, EvalFailed, doc_block, evaluate

pytestmark = pytest.mark.nix

SHAPES = ["25.05", "25.11"]  # libvirtd with a real qemu.ovmf / with the removal stub
EMPTY_USERS = "services.staging-vm.users is empty: nobody but root can run pr-test-vm"


@pytest.mark.parametrize("shape", SHAPES)
def test_defaults(shape: str) -> None:
    ev = evaluate("host", CASES / "host-defaults.nix", shape)
    assert ev.failed_assertions == []
    v = ev.values
    assert v["configFile"] == v["settings"]  # what /etc/stagingvm/config.toml gets
    assert v["settings"]["network"] == {
        "name": "staging",
        "bridge": "virbr-staging",
        "subnet": "192.168.150.0/24",
    }
    assert v["libvirtd"]["enable"] is True
    assert v["libvirtd"]["allowedBridges"] == ["virbr-staging"]  # replaces virbr0
    assert v["libvirtd"]["qemu"]["package"] == "qemu-kvm"
    assert v["libvirtd"]["qemu"]["swtpm"] is True
    assert v["trustedInterfaces"] == ["virbr-staging"]
    assert "d /var/lib/staging-vm 2770 root libvirtd -" in v["tmpfiles"]
    for sub in ("locks", "vms", "bases", "keys", "keys/users", "tmp"):  # shared, whoever runs first
        assert f"d /var/lib/staging-vm/{sub} 2770 root libvirtd -" in v["tmpfiles"]
    setup = v["services"]["stagingvm-setup"]
    assert setup["serviceConfig"]["Type"] == "oneshot"
    assert setup["requires"] == ["libvirtd.service"]
    assert v["systemPackages"] == ["stagingvm"]


def test_ovmf_is_enabled_where_the_option_exists() -> None:
    ev = evaluate("host", CASES / "host-defaults.nix", "25.05")
    assert ev.values["libvirtd"]["qemu"]["ovmf"]["enable"] is True


def test_ovmf_is_left_alone_where_it_is_the_removal_stub() -> None:
    """25.11 and later: setting qemu.ovmf.enable at all trips libvirtd's assertion."""
    ev = evaluate("host", CASES / "host-defaults.nix", "25.11")
    assert ev.values["libvirtd"]["qemu"]["ovmf"] == {
        "enable": None,
        "package": None,
        "packages": None,
    }
    assert ev.failed_assertions == []


def test_the_stub_really_rejects_ovmf() -> None:
    """The 25.11 declaration is not a no-op: a configuration that sets ovmf fails there."""
    ev = evaluate("host", CASES / "host-ovmf-by-hand.nix", "25.11")
    assert any("qemu.ovmf' submodule has been removed" in m for m in ev.failed_assertions)
    assert evaluate("host", CASES / "host-ovmf-by-hand.nix", "25.05").failed_assertions == []


def test_empty_users_warns_that_only_root_can_run_it() -> None:
    ev = evaluate("host", CASES / "host-defaults.nix")
    assert len(ev.warnings) == 1
    assert ev.warnings[0].startswith(EMPTY_USERS)
    assert "gortium" in ev.warnings[0]  # the old module's user is named, with the fix


def test_listed_user_joins_libvirtd_and_keeps_its_groups() -> None:
    ev = evaluate("host", CASES / "host-users.nix")
    assert ev.failed_assertions == [] and ev.warnings == []
    assert sorted(ev.values["users"]["gortium"]) == ["libvirtd", "wheel"]


def test_listing_an_undefined_user_fails_the_users_assertions() -> None:
    """Why the runner is no longer in `users` (docs/ci.md): it is no static user."""
    ev = evaluate("host", CASES / "host-undefined-user.nix")
    assert any("users.users.gitea-runner.isSystemUser" in m for m in ev.failed_assertions)


def test_subnet_only_writes_no_range() -> None:
    """pr-test-vm then derives the range from the subnet (see the config-file tests below)."""
    ev = evaluate("host", CASES / "host-subnet-only.nix")
    assert ev.failed_assertions == []
    network = ev.values["configFile"]["network"]
    assert network == {"name": "staging", "bridge": "virbr-staging", "subnet": "10.77.0.0/24"}


def test_both_ends_set_are_written() -> None:
    ev = evaluate("host", CASES / "host-dhcp-both.nix")
    assert ev.failed_assertions == []
    network = ev.values["configFile"]["network"]
    assert (network["dhcp_start"], network["dhcp_end"]) == ("10.77.0.100", "10.77.0.199")


def test_one_end_only_is_an_assertion() -> None:
    ev = evaluate("host", CASES / "host-dhcp-one.nix")
    assert ev.failed_assertions == [
        "services.staging-vm.network: set both dhcpStart and dhcpEnd, or neither "
        "(then the range follows the subnet)"
    ]


def test_a_misspelt_option_does_not_evaluate() -> None:
    with pytest.raises(EvalFailed) as err:
        evaluate("host", CASES / "host-misspelt.nix")
    assert "The option `services.staging-vm.network.dhcpStrat' does not exist" in err.value.stderr


@pytest.mark.parametrize("shape", SHAPES)
def test_the_runner_configuration_of_docs_ci(shape: str, tmp_path: Path) -> None:
    """docs/ci.md's runner module, as written there, against the runner module's options."""
    case = tmp_path / "runner.nix"
    case.write_text(doc_block(ROOT / "docs" / "ci.md", "runner-module"))
    ev = evaluate("host", case, shape)
    assert ev.failed_assertions == []
    unit = ev.values["services"]["gitea-runner-builder"]
    config = unit["serviceConfig"]
    assert config["DynamicUser"] is True  # still nixpkgs' unit, with our additions merged in
    assert config["StateDirectory"] == ["gitea-runner", "gitea-runner/builder"]
    assert config["SupplementaryGroups"] == ["libvirtd"]
    assert config["ReadWritePaths"] == ["/var/lib/staging-vm"]
    assert config["LoadCredential"] == ["token:/run/secrets/gitea-runner-token"]
    assert {"nodejs", "stagingvm", "nix", "git-minimal"} <= set(unit["path"])  # `:host` label
    # The runner is a DynamicUser: no static user was made for it.
    assert "gitea-runner" not in ev.values["users"]


def test_guest_module_wins_over_host_and_image_modules() -> None:
    """mkOverride 10 beats plain definitions, mkForce (50) and mkImageMediaOverride (60)."""
    ev = evaluate("guest", CASES / "guest-over-host.nix")
    assert ev.failed_assertions == []
    v = ev.values
    assert v["fileSystems"] == {
        "/": {
            "device": "/dev/disk/by-label/nixos",
            "fsType": "ext4",
            "autoResize": True,
            "options": [],
        }
    }
    assert v["swapDevices"] == [] and v["luks"] == {}
    assert v["grub"] == {"enable": True, "devices": ["/dev/vda"], "efiSupport": False}
    assert v["systemdBoot"] is False
    assert v["openssh"]["PermitRootLogin"] == "prohibit-password"
    assert v["openssh"]["authorizedKeysFiles"] == ["/run/stagingvm/authorized_keys/%u"]
    assert v["networking"] == {
        "useDHCP": True,
        "interfaces": {},
        "defaultGateway": None,
        "wireless": False,
    }
    assert v["loaderTimeout"] == 0 and v["qemuGuest"] is True
    assert v["kernelParams"][1] == "console=ttyS0,115200n8"
    assert v["credentials"] == ["ssh.authorized_keys.root", "stagingvm.authorized_keys.ai-worker"]
    assert (
        "f^ /run/stagingvm/authorized_keys/ai-worker 0644 root root - "
        "stagingvm.authorized_keys.ai-worker" in v["tmpfiles"]
    )


def test_guest_keeps_the_host_layout_when_told_to() -> None:
    ev = evaluate("guest", CASES / "guest-keep-boot.nix")
    v = ev.values
    assert v["fileSystems"]["/"]["device"] == "/dev/vda1"
    assert v["networking"]["defaultGateway"] == {"address": "10.0.2.2"}
    assert v["openssh"]["enable"] is True  # the SSH part stays on


def _table_options() -> set[str]:
    """The option paths in docs/nixos.md's table (first column; `.x` continues the first)."""
    text = (ROOT / "docs" / "nixos.md").read_text()
    table = text.split("## 5. Supported releases", 1)[1]
    found: set[str] = set()
    for row in table.splitlines():
        if not row.startswith("| `"):
            continue
        parent = ""
        for token in re.findall(r"`([^`]+)`", row.split(" | ")[0]):
            if token.startswith(".") and parent:
                found.add(parent + token)
            elif re.fullmatch(r"[\w.<>-]+", token) and "." in token:
                found.add(token)
                parent = token.rsplit(".", 1)[0]
            elif re.fullmatch(r"[\w]+", token):
                found.add(token)
    return found


@pytest.mark.parametrize(
    ("module", "case"),
    [
        ("host", "host-defaults.nix"),
        ("guest", "guest-keep-boot.nix"),
        ("ai-worker", "ai-worker-seed.nix"),
    ],
)
def test_docs_table_names_every_option_the_modules_touch(module: str, case: str) -> None:
    """Each NixOS option declared for the evaluation is in docs/nixos.md's table."""
    documented = _table_options()
    declared = evaluate(module, CASES / case).declared
    assert declared
    missing = [
        name
        for name in declared
        if not any(t == name or t.startswith(name + ".") for t in documented)
    ]
    assert missing == []


@pytest.mark.parametrize("version", ["25.11pre-git", "25.11.20251130.abcdef0", "26.11pre-git"])
def test_ovmf_choice_does_not_read_the_version(version: str) -> None:
    """A pre-release lib.version ("25.11pre-git" sorts before "25.11") changes nothing."""
    stub = evaluate("host", CASES / "host-defaults.nix", "25.11", version=version)
    assert stub.failed_assertions == []
    real = evaluate("host", CASES / "host-defaults.nix", "25.05", version=version)
    assert real.values["libvirtd"]["qemu"]["ovmf"]["enable"] is True


def test_no_definition_of_a_missing_ovmf_option() -> None:
    """Where nixpkgs has no qemu.ovmf at all, the module still evaluates (no `mkIf` on it)."""
    ev = evaluate("host", CASES / "host-defaults.nix", "no-ovmf")
    assert ev.failed_assertions == []
    assert ev.values["libvirtd"]["qemu"]["ovmf"] == "absent"


def _toml(doc: dict[str, Any]) -> str:
    """The module's settings (strings, integers, one level of tables) as TOML."""

    def value(v: Any) -> str:
        return json.dumps(v) if isinstance(v, str) else str(v)

    top = [f"{k} = {value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    tables = [
        f"[{k}]\n" + "\n".join(f"{kk} = {value(vv)}" for kk, vv in v.items())
        for k, v in doc.items()
        if isinstance(v, dict)
    ]
    return "\n".join(top) + "\n\n" + "\n\n".join(tables) + "\n"


def _pr_test_vm_config(config: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`pr-test-vm config --json` reading what the module writes to /etc/stagingvm/config.toml."""
    path = tmp_path / "config.toml"
    path.write_text(_toml(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGINGVM_")}
    env.update({"STAGINGVM_CONFIG": str(path), "HOME": str(tmp_path)})
    argv = [sys.executable, "-m", "stagingvm", "config", "--json"]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("case", "start", "end", "source"),
    [
        ("host-subnet-only.nix", "10.77.0.10", "10.77.0.254", "derived"),
        ("host-dhcp-both.nix", "10.77.0.100", "10.77.0.199", "config file"),
        ("host-defaults.nix", "192.168.150.10", "192.168.150.254", "derived"),
    ],
)
def test_pr_test_vm_accepts_the_file_the_module_writes(
    case: str, start: str, end: str, source: str, tmp_path: Path
) -> None:
    """The written file, read by pr-test-vm itself: no "dhcp_start outside subnet" (exit 2)."""
    done = _pr_test_vm_config(evaluate("host", CASES / case).values["configFile"], tmp_path)
    assert done.returncode == 0, done.stderr
    settings = json.loads(done.stdout)["settings"]
    assert settings["network.dhcp_start"]["value"] == start
    assert settings["network.dhcp_end"]["value"] == end
    assert settings["network.dhcp_start"]["source"] == source


def test_the_old_fixed_range_with_another_subnet_is_refused(tmp_path: Path) -> None:
    """What the module wrote before: the default range beside a changed subnet."""
    old = evaluate("host", CASES / "host-subnet-only.nix").values["configFile"]
    old["network"] |= {"dhcp_start": "192.168.150.10", "dhcp_end": "192.168.150.254"}
    done = _pr_test_vm_config(old, tmp_path)
    assert done.returncode == 2 and "outside network.subnet" in done.stderr
