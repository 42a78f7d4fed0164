"""The policy lab: guest images for the seeds' two designs and the recommended one.

Each recipe is the ``debian`` recipe with docker.io (from ``stagingvm.images``) plus:

- ``design-a``: ai-worker in the ``docker`` group, and the docker wrapper of seed 000 taken
  as written (only its store paths replaced: ``/usr/bin/docker``, ``/bin/bash``), installed
  as ``/usr/local/bin/docker``, ahead of the real docker in every SSH session's PATH;
- ``design-b``: ai-worker in no docker group, and the sudo rules of seed 002
  (``users/ai-worker.nix``) as NixOS renders them, paths adapted to Debian;
- ``hardened``: no docker group; a root-owned helper ``/usr/local/sbin/ai-docker`` with fixed
  verbs on fixed containers, reachable only through sudo rules with exact arguments
  (docs/hardened-design.md).

The files installed are kept verbatim in ``stagingvm/checks/designfiles/`` so they can be read and
diffed against the seeds. ai-worker's key arrives at boot as the SMBIOS credential
``stagingvm.authorized_keys.ai-worker`` (see ``stagingvm.checks.access.user_credentials``).
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from stagingvm.images.recipe import FileSpec, UserSpec
from stagingvm.images.registry import get_recipe, register_recipe

if TYPE_CHECKING:
    from stagingvm.images.recipe import Recipe

USER = "ai-worker"
# What the probes and the oracles need in every variant (python3: the fake registry, the
# socket probe; curl: the API probes; less: journalctl's pager).
LAB_PACKAGES = ("curl", "python3", "less")


def _lab_file(name: str) -> bytes:
    return resources.files("stagingvm.checks.designfiles").joinpath(name).read_bytes()


def _visudo(path: str) -> tuple[str, ...]:
    return ("visudo", "-c", "-f", path)


def _base() -> Recipe:
    return get_recipe("debian", docker=True)


def design_a() -> Recipe:
    return _base().layered(
        "design-a",
        packages=LAB_PACKAGES,
        users=(UserSpec(USER, groups=("docker",)),),
        files=(FileSpec("/usr/local/bin/docker", _lab_file("seed000-docker-wrapper.sh"), 0o755),),
        description="seed 000: ai-worker in the docker group behind a PATH wrapper",
    )


def design_b() -> Recipe:
    return _base().layered(
        "design-b",
        packages=LAB_PACKAGES,
        users=(UserSpec(USER),),
        files=(FileSpec("/etc/sudoers.d/ai-worker", _lab_file("seed002-sudoers"), 0o440),),
        commands=(_visudo("/etc/sudoers.d/ai-worker"),),
        description="seed 002: no docker group, sudo rules with wildcards",
    )


def hardened() -> Recipe:
    return _base().layered(
        "hardened",
        packages=LAB_PACKAGES,
        users=(UserSpec(USER),),
        files=(
            FileSpec("/usr/local/sbin/ai-docker", _lab_file("ai-docker"), 0o755),
            FileSpec("/etc/sudoers.d/ai-worker", _lab_file("hardened-sudoers"), 0o440),
        ),
        commands=(_visudo("/etc/sudoers.d/ai-worker"),),
        description="recommended: a root-owned helper with fixed verbs, exact sudo rules",
    )


register_recipe("design-a", design_a)
register_recipe("design-b", design_b)
register_recipe("hardened", hardened)
