"""The NixOS file layout on a Debian image: a recipe option, not a second set of recipes.

``with_nixos_layout(recipe, ...)`` returns *recipe* with the files and the chroot command
that rearrange its root file system the way a NixOS system has it (docs/images.md,
"The NixOS layout", cites the nixpkgs module behind each piece):

- docker's client and daemon only in ``/nix/store/<hash>-docker-<version>/bin``, sudo only
  in ``/nix/store/<hash>-sudo-<version>/bin`` (no /usr/bin/docker, no /usr/bin/sudo);
- ``/run/current-system/sw/bin`` (linked at boot), per-user profiles
  ``/etc/profiles/per-user/USER/bin``;
- ``/run/wrappers/bin/sudo``: a set-uid copy made at boot on its own tmpfs;
- PATH for every PAM session from ``/etc/pam/environment`` (pam_env), login shells from
  ``/etc/set-environment``;
- ``/etc/sudoers`` as NixOS renders it: no ``secure_path``, the rules inline.

Scripts a recipe ships as packages (``packages``: name -> {program: bytes}) become store
paths too; ``@docker@`` in them is replaced by docker's store path, as ``${pkgs.docker}``
is in Nix.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib import resources

from stagingvm.images.recipe import FileSpec, Recipe

LAYOUTS = ("debian", "nixos")
LIB = "/usr/local/lib/stagingvm/nixos"
SCRIPT = f"{LIB}/nixos-layout"

# nixos/modules/config/system-environment.nix: PATH is the wrapper dir, then each of
# environment.profiles (users-groups.nix, programs/environment.nix) + "/bin", with $HOME
# and $USER mapped to pam_env's @{HOME} and @{PAM_USER}.
PROFILES = (
    "$HOME/.nix-profile",
    "${XDG_STATE_HOME}/nix/profile",
    "$HOME/.local/state/nix/profile",
    "/etc/profiles/per-user/$USER",
    "/nix/var/nix/profiles/default",
    "/run/current-system/sw",
)
WRAPPER_DIR = "/run/wrappers/bin"


def _pam_path() -> str:
    dirs = [WRAPPER_DIR] + [f"{p}/bin" for p in PROFILES]
    return ":".join(d.replace("$HOME", "@{HOME}").replace("$USER", "@{PAM_USER}") for d in dirs)


PAM_ENVIRONMENT = f'PATH   DEFAULT="{_pam_path()}"\n'

# What NixOS's /etc/profile does for login shells: source set-environment (the same
# profiles), then environment.extraInit, where security.wrappers puts its dir first.
SET_ENVIRONMENT = (
    "# stagingvm NixOS layout: what NixOS's /etc/set-environment exports\n"
    "export __NIXOS_SET_ENVIRONMENT_DONE=1\n"
    'export PATH="' + ":".join(f"{p}/bin" for p in PROFILES) + '"\n'
    "# Wrappers override other bin directories.\n"
    f'export PATH="{WRAPPER_DIR}:$PATH"\n'
)
PROFILE = """\
# stagingvm NixOS layout: /etc/profile as on NixOS, the environment from set-environment
if [ -z "${__NIXOS_SET_ENVIRONMENT_DONE-}" ]; then
    . /etc/set-environment
fi
if [ -n "${BASH_VERSION-}" ] && [ -n "${PS1-}" ] && [ -f /etc/bash.bashrc ]; then
    . /etc/bash.bashrc
fi
"""

# nixos/modules/security/wrappers/default.nix: systemd.mounts for /run/wrappers and the
# suid-sgid-wrappers service.
WRAPPERS_MOUNT = """\
[Unit]
Description=stagingvm NixOS layout: the security wrappers' tmpfs
DefaultDependencies=no
Before=local-fs.target

[Mount]
What=tmpfs
Where=/run/wrappers
Type=tmpfs
Options=nodev,mode=755,size=50%
"""
WRAPPERS_SERVICE = f"""\
[Unit]
Description=Create SUID/SGID Wrappers
DefaultDependencies=no
Before=sysinit.target shutdown.target
Conflicts=shutdown.target
After=systemd-sysusers.service
RequiresMountsFor=/nix/store /run/wrappers

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={LIB}/suid-sgid-wrappers

[Install]
WantedBy=sysinit.target
"""
# The first-boot image import calls `docker` by name: give it the system profile.
IMPORT_PATH = "[Service]\nEnvironment=PATH=/run/current-system/sw/bin:/usr/sbin:/usr/bin\n"

STORE_PACKAGES = (
    {"name": "docker", "deb": "docker.io", "move": ["/usr/bin/docker", "/usr/sbin/dockerd"]},
    {"name": "sudo", "deb": "sudo", "move": ["/usr/bin/sudo", "/usr/bin/sudoedit"]},
)


def _script() -> bytes:
    return resources.files("stagingvm.images").joinpath("nixos-layout.py").read_bytes()


def with_nixos_layout(
    recipe: Recipe,
    *,
    sudoers: bytes,
    packages: Mapping[str, Mapping[str, bytes]] | None = None,
    system_packages: Sequence[str] = (),
    user_packages: Mapping[str, Sequence[str]] | None = None,
) -> Recipe:
    """*recipe* with the NixOS layout applied after its own files and commands."""
    packages = dict(packages or {})
    plan = {
        "hostname": recipe.hostname,
        "store": list(STORE_PACKAGES),
        "staged": sorted(packages),
        "system_packages": list(system_packages),
        "user_packages": {u: list(p) for u, p in (user_packages or {}).items()},
        "setuid": {"sudo": "sudo", "sudoedit": "sudo"},
        "pam_env": ["common-session", "common-session-noninteractive"],
    }
    staged = tuple(
        FileSpec(f"{LIB}/packages/{name}/bin/{prog}", content, 0o755)
        for name, progs in sorted(packages.items())
        for prog, content in sorted(progs.items())
    )
    files = (
        FileSpec(f"{LIB}/layout.json", json.dumps(plan, indent=1, sort_keys=True).encode()),
        FileSpec(SCRIPT, _script(), 0o755),
        *staged,
        FileSpec("/etc/pam/environment", PAM_ENVIRONMENT.encode()),
        FileSpec("/etc/set-environment", SET_ENVIRONMENT.encode()),
        FileSpec("/etc/profile", PROFILE.encode()),
        FileSpec("/etc/systemd/system/run-wrappers.mount", WRAPPERS_MOUNT.encode()),
        FileSpec("/etc/systemd/system/suid-sgid-wrappers.service", WRAPPERS_SERVICE.encode()),
        FileSpec(
            "/etc/systemd/system/stagingvm-docker-import.service.d/stagingvm-nixos.conf",
            IMPORT_PATH.encode(),
        ),
        FileSpec("/etc/sudoers", sudoers, 0o440),
    )
    commands = (
        ("visudo", "-c", "-f", "/etc/sudoers"),
        (SCRIPT,),
        ("systemctl", "enable", "suid-sgid-wrappers.service"),
    )
    return recipe.with_changes(
        files=recipe.files + files,
        commands=recipe.commands + commands,
        options=(*recipe.options, ("layout", "nixos")),
        description=recipe.description + " (NixOS file layout)",
    )
