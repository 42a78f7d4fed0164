"""The policy lab: guest images for the seeds' two designs and the recommended one.

Each recipe is the ``debian`` recipe with docker.io (from ``stagingvm.images``) plus:

- ``design-a``: ai-worker in the ``docker`` group, and the docker wrapper of seed 000 taken
  as written (only its store paths replaced: ``/usr/bin/docker``, ``/bin/bash``), installed
  as ``/usr/local/bin/docker``, ahead of the real docker in every SSH session's PATH;
- ``design-b``: ai-worker in no docker group, and the sudo rules of seed 002
  (``users/ai-worker.nix``) as NixOS renders them, paths adapted to Debian;
- ``hardened``: no docker group; a root-owned helper ``/usr/local/sbin/ai-docker`` with fixed
  verbs on fixed containers, reachable only through sudo rules with exact arguments
  (docs/hardened-design.md), both generated from ``designfiles/hardened.json`` as
  nix/ai-worker.nix generates them (``stagingvm.checks.hardened``).

Each also comes in the NixOS file layout (``design-a-nixos``, ``design-b-nixos``,
``hardened-nixos``: the ``layout`` option, ``stagingvm.images.nixlayout``): the client only in
a store path, the wrapper (design A) in ai-worker's per-user profile, PATH from PAM, sudo in
/run/wrappers/bin, the sudo rules with the NixOS paths seed 002 wrote (docs/images.md).

The seeds' files installed are kept verbatim in ``stagingvm/checks/designfiles/`` so they can
be read and diffed against the seeds. ai-worker's key arrives at boot as the SMBIOS credential
``stagingvm.authorized_keys.ai-worker`` (see ``stagingvm.checks.access.user_credentials``).
"""

from __future__ import annotations

from functools import partial
from importlib import resources
from typing import TYPE_CHECKING

from stagingvm.checks import hardened as hardened_spec
from stagingvm.errors import InvalidInputError
from stagingvm.images.nixlayout import LAYOUTS, with_nixos_layout
from stagingvm.images.recipe import FileSpec, UserSpec
from stagingvm.images.registry import get_recipe, register_recipe

if TYPE_CHECKING:
    from stagingvm.images.recipe import Recipe

USER = "ai-worker"
DESIGNS = ("design-a", "design-b", "hardened")
NIXOS_DESIGNS = tuple(f"{d}-nixos" for d in DESIGNS)
# What the probes and the oracles need in every variant (python3: the fake registry, the
# socket probe; curl: the API probes; less: journalctl's pager).
LAB_PACKAGES = ("curl", "python3", "less")


def _lab_file(name: str) -> bytes:
    return resources.files("stagingvm.checks.designfiles").joinpath(name).read_bytes()


def _visudo(path: str) -> tuple[str, ...]:
    return ("visudo", "-c", "-f", path)


def _base() -> Recipe:
    return get_recipe("debian", docker=True)


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise InvalidInputError(f"unknown layout {layout!r}", hint="layouts: " + ", ".join(LAYOUTS))


def _nix_ref(script: bytes) -> bytes:
    """A lab script's Debian docker path as the Nix expression has it: ${pkgs.docker}."""
    return script.replace(b"/usr/bin/docker", b"@docker@/bin/docker")


def _name(design: str, layout: str) -> str:
    return design if layout == "debian" else f"{design}-{layout}"


def design_a(layout: str = "debian") -> Recipe:
    """Seed 000. NixOS layout: the wrapper is a package of ai-worker's own
    (``users.users.ai-worker.packages``), so /etc/profiles/per-user/ai-worker/bin/docker
    comes before /run/current-system/sw/bin/docker, the real client."""
    _check_layout(layout)
    wrapper = _lab_file("seed000-docker-wrapper.sh")
    files = () if layout == "nixos" else (FileSpec("/usr/local/bin/docker", wrapper, 0o755),)
    recipe = _base().layered(
        _name("design-a", layout),
        packages=LAB_PACKAGES,
        users=(UserSpec(USER, groups=("docker",)),),
        files=files,
        description="seed 000: ai-worker in the docker group behind a PATH wrapper",
    )
    if layout == "debian":
        return recipe
    return with_nixos_layout(
        recipe,
        sudoers=_lab_file("nixos-sudoers"),
        packages={"restricted-docker": {"docker": _nix_ref(wrapper)}},
        user_packages={USER: ("restricted-docker",)},
    )


def design_b(layout: str = "debian") -> Recipe:
    """Seed 002. NixOS layout: the rules in /etc/sudoers with their NixOS paths as written."""
    _check_layout(layout)
    if layout == "nixos":
        recipe = _base().layered(
            "design-b-nixos",
            packages=LAB_PACKAGES,
            users=(UserSpec(USER),),
            description="seed 002: no docker group, sudo rules with wildcards",
        )
        return with_nixos_layout(recipe, sudoers=_lab_file("seed002-sudoers-nixos"))
    return _base().layered(
        "design-b",
        packages=LAB_PACKAGES,
        users=(UserSpec(USER),),
        files=(FileSpec("/etc/sudoers.d/ai-worker", _lab_file("seed002-sudoers"), 0o440),),
        commands=(_visudo("/etc/sudoers.d/ai-worker"),),
        description="seed 002: no docker group, sudo rules with wildcards",
    )


def hardened(layout: str = "debian") -> Recipe:
    """The recommended design, built from the lab's spec (``designfiles/hardened.json``) by
    ``stagingvm.checks.hardened``: the same helper and rules nix/ai-worker.nix generates.
    NixOS layout: the helper is a system package (/run/current-system/sw/bin/ai-docker,
    calling docker by its store path)."""
    _check_layout(layout)
    spec = hardened_spec.lab_spec()
    description = "recommended: a root-owned helper with fixed verbs, exact sudo rules"
    if layout == "nixos":
        recipe = _base().layered(
            "hardened-nixos", packages=LAB_PACKAGES, users=(UserSpec(USER),),
            description=description,
        )  # fmt: skip
        helper = hardened_spec.helper(spec, hardened_spec.NIXOS_LAB).encode()
        return with_nixos_layout(
            recipe,
            sudoers=hardened_spec.sudoers_nixos(spec).encode(),
            packages={"ai-docker": {"ai-docker": helper}},
            system_packages=("ai-docker",),
        )
    return _base().layered(
        "hardened",
        packages=LAB_PACKAGES,
        users=(UserSpec(USER),),
        files=(
            FileSpec(
                hardened_spec.DEBIAN.helper,
                hardened_spec.helper(spec, hardened_spec.DEBIAN).encode(),
                0o755,
            ),
            FileSpec(
                "/etc/sudoers.d/ai-worker", hardened_spec.sudoers_debian(spec).encode(), 0o440
            ),
        ),
        commands=(_visudo("/etc/sudoers.d/ai-worker"),),
        description=description,
    )


for _design, _factory in (("design-a", design_a), ("design-b", design_b), ("hardened", hardened)):
    register_recipe(_design, _factory)
    register_recipe(f"{_design}-nixos", partial(_factory, layout="nixos"))
