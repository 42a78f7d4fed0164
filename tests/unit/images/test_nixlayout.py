"""The NixOS layout option of the policy lab's recipes (stagingvm.images.nixlayout).

What the layout does inside an image is tested for real by the e2e suite (the images boot,
and test_checks_lab.py looks at PATH, the store paths and sudo in the guest); these tests pin
what the recipes carry: the PATH NixOS's PAM environment gives, sudoers as NixOS renders
seed 002's rules, the wrapper as a per-user package calling docker by its store path.
"""

from __future__ import annotations

import importlib.util
import json
import re
from importlib import resources
from types import ModuleType

import pytest

from stagingvm.checks import hardened
from stagingvm.errors import InvalidInputError
from stagingvm.images import get_recipe
from stagingvm.images.recipe import Recipe

NIXOS_PATH = (
    "/run/wrappers/bin:@{HOME}/.nix-profile/bin:${XDG_STATE_HOME}/nix/profile/bin:"
    "@{HOME}/.local/state/nix/profile/bin:/etc/profiles/per-user/@{PAM_USER}/bin:"
    "/nix/var/nix/profiles/default/bin:/run/current-system/sw/bin"
)


def files(recipe: Recipe) -> dict[str, bytes]:
    return {f.path: f.content for f in recipe.files}


def plan(recipe: Recipe) -> dict[str, object]:
    layout = files(recipe)["/usr/local/lib/stagingvm/nixos/layout.json"]
    data: dict[str, object] = json.loads(layout)
    return data


def lab(name: str) -> bytes:
    return resources.files("stagingvm.checks.designfiles").joinpath(name).read_bytes()


@pytest.mark.parametrize("design", ["design-a", "design-b", "hardened"])
def test_each_design_has_a_nixos_variant_on_the_same_parent(design: str) -> None:
    debian, nixos = get_recipe(design), get_recipe(f"{design}-nixos")
    assert nixos.name == f"{design}-nixos"
    assert nixos.parent == debian.parent  # one debian-docker rootfs for both layouts
    assert nixos.option("layout") == "nixos" and debian.option("layout") == ""
    assert nixos.content_hash() != debian.content_hash()
    assert nixos.packages == debian.packages
    assert [u.to_hashable() for u in nixos.users] == [u.to_hashable() for u in debian.users]
    layout_files = {p for p in files(nixos) if p.startswith("/usr/local/lib/stagingvm/nixos/")}
    assert not layout_files & set(files(debian))


@pytest.mark.parametrize("design", ["design-a-nixos", "design-b-nixos", "hardened-nixos"])
def test_every_pam_session_gets_nixos_path(design: str) -> None:
    recipe = get_recipe(design)
    pam = files(recipe)["/etc/pam/environment"].decode()
    assert pam.strip() == f'PATH   DEFAULT="{NIXOS_PATH}"'
    assert plan(recipe)["pam_env"] == ["common-session", "common-session-noninteractive"]
    # docker and sudo leave their Debian paths for the store
    moved = {p for pkg in plan(recipe)["store"] for p in pkg["move"]}  # type: ignore[attr-defined]
    assert {"/usr/bin/docker", "/usr/bin/sudo"} <= moved
    sudoers = files(recipe)["/etc/sudoers"].decode()
    assert "secure_path" not in sudoers and "@includedir" not in sudoers
    assert re.search(r"^root\s+ALL=\(ALL:ALL\)\s+SETENV: ALL$", sudoers, re.M)


def test_design_a_nixos_wrapper_is_a_per_user_package_calling_the_store_client() -> None:
    recipe = get_recipe("design-a-nixos")
    assert "/usr/local/bin/docker" not in files(recipe)
    wrapper = files(recipe)["/usr/local/lib/stagingvm/nixos/packages/restricted-docker/bin/docker"]
    assert b'exec @docker@/bin/docker "$@"' in wrapper and b"/usr/bin/docker" not in wrapper
    # the seed's script otherwise unchanged
    assert wrapper.replace(b"@docker@", b"/usr") == lab("seed000-docker-wrapper.sh")
    assert plan(recipe)["user_packages"] == {"ai-worker": ["restricted-docker"]}
    assert "ai-worker ALL" not in files(recipe)["/etc/sudoers"].decode()


def test_design_b_nixos_has_seed_002s_rules_with_their_nixos_paths() -> None:
    sudoers = files(get_recipe("design-b-nixos"))["/etc/sudoers"].decode()
    line = next(x for x in sudoers.splitlines() if x.startswith("ai-worker"))
    assert line.startswith("ai-worker     ALL=(ALL:ALL)    NOPASSWD: ")
    nixos_rules = [c.removeprefix("NOPASSWD: ") for c in line.split("    ", 2)[2].split(", ")]
    # the same rules as the Debian layout's drop-in, each with the path seed 002 wrote
    to_nixos = {
        "/usr/bin/sudo": "/run/wrappers/bin/sudo",
        "/usr/bin/": "/run/current-system/sw/bin/",
        "/usr/sbin/": "/run/current-system/sw/bin/",
    }
    debian_rules = []
    for x in lab("seed002-sudoers").decode().splitlines():
        if x.startswith("ai-worker"):
            cmd = x.split("NOPASSWD: ", 1)[1]
            for deb, nix in to_nixos.items():
                if cmd.startswith(deb):
                    cmd = nix + cmd.removeprefix(deb)
                    break
            debian_rules.append(cmd)
    assert nixos_rules == debian_rules
    assert "/run/wrappers/bin/sudo iptables -L -n -v" in nixos_rules
    assert "/run/current-system/sw/bin/docker run *" in nixos_rules


def test_hardened_nixos_helper_is_a_system_package() -> None:
    recipe = get_recipe("hardened-nixos")
    helper = files(recipe)["/usr/local/lib/stagingvm/nixos/packages/ai-docker/bin/ai-docker"]
    assert b"DOCKER=@docker@/bin/docker" in helper
    # generated from the lab's spec, as nix/ai-worker.nix generates it (tests/nix)
    assert helper == hardened.helper(hardened.lab_spec(), hardened.NIXOS_LAB).encode()
    assert plan(recipe)["system_packages"] == ["ai-docker"]
    sudoers = files(recipe)["/etc/sudoers"].decode()
    assert "NOPASSWD: /run/current-system/sw/bin/ai-docker ps," in sudoers
    assert hardened.nixos_rule_line(hardened.lab_spec(), hardened.NIXOS_LAB) in sudoers
    assert "Defaults:ai-worker !setenv, env_reset" in sudoers


def test_unknown_layout_is_refused() -> None:
    from stagingvm.checks.designs import design_b

    with pytest.raises(InvalidInputError, match="unknown layout"):
        design_b(layout="gentoo")


def _script() -> ModuleType:
    path = resources.files("stagingvm.images").joinpath("nixos-layout.py")
    spec = importlib.util.spec_from_file_location("nixos_layout", str(path))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_store_paths_look_like_nix_and_are_stable() -> None:
    script = _script()
    path = str(script.store_path("docker-20.10.24+dfsg1"))
    assert re.fullmatch(r"/nix/store/[0-9a-df-np-sv-z]{32}-docker-20\.10\.24\+dfsg1", path)
    assert path == str(script.store_path("docker-20.10.24+dfsg1"))
    assert script.store_path("sudo-1.9.13p3") != script.store_path("sudo-1.9.14")
    assert script.substitute(b"exec @docker@/bin/docker", {"docker": script.STORE / "x"}) == (
        b"exec /nix/store/x/bin/docker"
    )
