"""nix/ai-worker.nix (``stagingvm.nixosModules.ai-worker``) evaluated by nixpkgs' module system.

Against declarations of the options it touches (tests/nix/nixos_decls/: sudo.nix copies the
part of nixpkgs' sudo.nix that writes /etc/sudoers, so the rules compared are the ones NixOS
would write). The policy lab's guests must run the same helper and rules the module makes:
both come from ``stagingvm/checks/designfiles/ai-docker.in`` and one spec.
"""

from __future__ import annotations

import pytest

from stagingvm.checks import hardened, hardpolicy
from stagingvm.images import get_recipe
from tests.nix.nixos_eval import CASES, EvalFailed, evaluate

pytestmark = pytest.mark.nix

STORE = "/nix/store/00000000000000000000000000000000"  # the stand-in packages (pkgs.nix)
MODULE_PATHS = hardened.Paths(
    bash=f"{STORE}-bash/bin/bash",
    docker=f"{STORE}-docker/bin/docker",
    path=hardened.SYSTEM_SW,
    helper=hardened.NIXOS_LAB.helper,
    tools=hardened.SYSTEM_SW,
)
SW = "/run/current-system/sw/bin"


def test_the_seeds_configuration_evaluates() -> None:
    """ollama to look at and restart, one image to run; seed 000's docker group is gone."""
    ev = evaluate("ai-worker", CASES / "ai-worker-seed.nix")
    assert ev.failed_assertions == [] and ev.warnings == []
    v = ev.values
    assert v["users"]["ai-worker"] == {"extraGroups": [], "isNormalUser": True, "group": "users"}
    assert "ai-docker" in v["systemPackages"]
    assert v["sudoCommands"] == [
        f"{SW}/ai-docker ps",
        f"{SW}/ai-docker inspect ollama",
        f"{SW}/ai-docker logs ollama",
        f"{SW}/ai-docker restart ollama",
        f"{SW}/ai-docker run alpine\\:3.20 *",
        f"{SW}/iptables -L -n -v",
        f"{SW}/iptables -S",
        f"{SW}/journalctl --no-pager -t kernel -n 100",
        f"{SW}/journalctl --no-pager -u firewall -n 50",
        f"{SW}/sshd -T",
        f"{SW}/ss -tlnp",
    ]
    ours = [r for r in v["extraRules"] if r["users"] == ["ai-worker"]]
    assert len(ours) == 1 and ours[0]["runAs"] == "root"
    assert {tuple(c["options"]) for c in ours[0]["commands"]} == {("NOPASSWD",)}
    assert v["helperArgs"]["destination"] == "/bin/ai-docker" and v["helperArgs"]["executable"]
    assert "-n $target" in v["helperArgs"]["checkPhase"]  # bash -n: it parses
    # the spec the module exposes is one stagingvm reads, with the same values
    spec = hardened.parse_spec(v["spec"])
    assert (spec.containers, spec.images) == (("ollama",), ("alpine:3.20",))
    assert v["helper"] == hardened.helper(spec, MODULE_PATHS)
    assert v["sudoers"] == hardened.sudoers_nixos(spec, MODULE_PATHS)


def test_module_and_lab_recipe_get_byte_identical_helper_and_rules() -> None:
    """The lab's spec through the module == the hardened-nixos guest's files, but for the two
    store paths the lab's layout fills in itself (bash, docker)."""
    v = evaluate("ai-worker", CASES / "ai-worker-lab.nix").values
    lab = hardened.lab_spec()
    assert hardened.parse_spec(v["spec"]) == lab
    assert v["helper"] == hardened.helper(lab, MODULE_PATHS)
    files = {f.path: f.content for f in get_recipe("hardened-nixos").files}
    guest_helper = files["/usr/local/lib/stagingvm/nixos/packages/ai-docker/bin/ai-docker"]
    as_module = guest_helper.replace(b"#!/bin/bash\n", f"#!{MODULE_PATHS.bash}\n".encode(), 1)
    as_module = as_module.replace(
        b"DOCKER=@docker@/bin/docker", f"DOCKER={STORE}-docker/bin/docker".encode()
    )
    assert as_module == v["helper"].encode()
    assert files["/etc/sudoers"] == v["sudoers"].encode()  # the whole file, as sudo.nix writes it
    # the Debian-layout guest: the same template and commands, Debian's paths
    deb = {f.path: f.content for f in get_recipe("hardened").files}
    assert deb["/usr/local/sbin/ai-docker"] == hardened.helper(lab, hardened.DEBIAN).encode()


def test_the_generated_policy_allows_exactly_the_modules_rules() -> None:
    v = evaluate("ai-worker", CASES / "ai-worker-seed.nix").values
    policy_text = hardpolicy.policy_toml(hardened.parse_spec(v["spec"]), hardened.NIXOS_LAB)
    from stagingvm.policy import parse_policy

    policy = parse_policy(policy_text)
    assert list(policy.sudo.allowed) == [c.replace("\\:", ":") for c in v["sudoCommands"]]
    assert policy.host.helper == f"{SW}/ai-docker"
    assert (policy.containers.service, policy.containers.image) == ("ollama", "alpine:3.20")


def test_docker_group_added_back_fails_the_build() -> None:
    ev = evaluate("ai-worker", CASES / "ai-worker-docker-group.nix")
    assert ev.failed_assertions == [
        "stagingvm.aiWorker: ai-worker is in a privileged group (docker): the docker group "
        "alone is root on the host. Remove it (users.users.ai-worker.extraGroups, "
        "users.groups.<name>.members)."
    ]


def test_a_wildcard_rule_fails_the_build() -> None:
    ev = evaluate("ai-worker", CASES / "ai-worker-wildcard.nix")
    assert len(ev.failed_assertions) == 1
    message = ev.failed_assertions[0]
    assert message.startswith("stagingvm.aiWorker: a sudo rule for ai-worker is not one")
    assert f"{SW}/docker run *" in message
    assert "runAs ALL:ALL" in message  # the exact helper command, but any target user


def test_an_image_carrying_options_is_refused_by_the_type() -> None:
    with pytest.raises(EvalFailed) as failed:
        evaluate("ai-worker", CASES / "ai-worker-bad-image.nix")
    assert "stagingvm.aiWorker.images" in failed.value.stderr
    assert "is not of type" in failed.value.stderr
