#!/usr/bin/python3
"""stagingvm: give a Debian root file system the NixOS file layout (run once, in the chroot).

Reads the plan /usr/local/lib/stagingvm/nixos/layout.json that the image recipe wrote
(stagingvm.images.nixlayout) and, mirroring what a NixOS system build and its activation
leave behind:

- moves each "store" package's files from their Debian paths into
  /nix/store/<hash>-<name>-<version>/bin (mode 0555, as store files are), so the Debian
  path is gone (no /usr/bin/docker, no /usr/bin/sudo);
- makes "staged" packages (the recipe's own scripts, e.g. seed 000's wrapper) into store
  paths too, replacing @name@ by the store path of package name (the ${pkgs.name} of Nix);
- builds the system profile /nix/store/<hash>-system-path/bin (a symlink farm over every
  program in /usr/bin and /usr/sbin, the store packages and the system packages), the
  system /nix/store/<hash>-nixos-system-HOST/sw, and per-user profiles
  /etc/profiles/per-user/USER -> /nix/store/<hash>-user-environment;
- writes the boot-time pieces that NixOS's activation would do: a tmpfiles rule for
  /run/current-system, the /run/wrappers tmpfs and the suid-sgid-wrappers unit that puts a
  set-uid copy of sudo in /run/wrappers/bin, a docker.service drop-in that starts dockerd
  from its store path;
- prints what it did, as JSON, on stdout (the build log keeps it).

Store hashes are not content hashes: they are the first 160 bits of sha256("NAME-VERSION")
in Nix's base-32 alphabet, so an unchanged recipe gives the same paths.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

PLAN = Path("/usr/local/lib/stagingvm/nixos/layout.json")
STORE = Path("/nix/store")
PAM_ENV = "session required pam_env.so conffile=/etc/pam/environment readenv=0"
NIX32 = "0123456789abcdfghijklmnpqrsvwxyz"


def nix_hash(name: str) -> str:
    digest = hashlib.sha256(name.encode()).digest()[:20]
    n = int.from_bytes(digest, "little")
    return "".join(NIX32[(n >> (5 * i)) & 31] for i in range(32))[::-1]


def store_path(name: str) -> Path:
    return STORE / f"{nix_hash(name)}-{name}"


def deb_version(package: str) -> str:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=True
    ).stdout
    # Nix versions have no epoch and no Debian revision.
    version = out.split(":", 1)[-1]
    return version.split("-", 1)[0]


def substitute(data: bytes, paths: dict[str, Path]) -> bytes:
    for name, path in paths.items():
        data = data.replace(f"@{name}@".encode(), str(path).encode())
    return data


def freeze(path: Path) -> None:
    """Store contents are read-only and root-owned."""
    for p in [*sorted(path.rglob("*"), reverse=True), path]:
        if p.is_symlink():
            continue
        os.chown(p, 0, 0)
        if p.is_dir():
            p.chmod(0o555)
        else:
            p.chmod(0o555 if os.access(p, os.X_OK) else 0o444)


def symlink(target: Path | str, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)


def main() -> int:
    plan = json.loads(PLAN.read_text())
    paths: dict[str, Path] = {}
    # 1. Debian packages moved into the store.
    for pkg in plan["store"]:
        name = f"{pkg['name']}-{deb_version(pkg['deb'])}"
        out = store_path(name)
        (out / "bin").mkdir(parents=True, exist_ok=True)
        for src in pkg["move"]:
            src_p = Path(src)
            dst = out / "bin" / src_p.name
            if src_p.is_symlink():
                target = os.readlink(src_p)
                src_p.unlink()
                dst.symlink_to(Path(target).name if "/" not in target else target)
            else:
                shutil.move(src_p, dst)
        freeze(out)
        paths[pkg["name"]] = out
    # 2. The recipe's own packages (scripts staged under the plan's directory).
    staged = PLAN.parent / "packages"
    for pkg in plan["staged"]:
        out = store_path(pkg)
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(staged / pkg, out, symlinks=True)
        for f in out.rglob("*"):
            if f.is_file() and not f.is_symlink():
                f.write_bytes(substitute(f.read_bytes(), paths))
        freeze(out)
        paths[pkg] = out
    shutil.rmtree(staged, ignore_errors=True)
    # 3. The system profile: everything Debian ships on its PATH, then the store packages
    #    and the system packages over it (a later entry wins, like a higher priority).
    sw = store_path("system-path")
    shutil.rmtree(sw, ignore_errors=True)
    (sw / "bin").mkdir(parents=True)
    for d in (Path("/usr/sbin"), Path("/usr/bin")):
        for prog in sorted(d.iterdir()):
            if prog.is_file() and os.access(prog, os.X_OK):
                symlink(prog, sw / "bin" / prog.name)
    for pkg in [p["name"] for p in plan["store"]] + plan["system_packages"]:
        for prog in sorted((paths[pkg] / "bin").iterdir()):
            symlink(prog, sw / "bin" / prog.name)
    system = store_path(f"nixos-system-{plan['hostname']}")
    shutil.rmtree(system, ignore_errors=True)
    system.mkdir(parents=True)
    symlink(sw, system / "sw")
    freeze(sw)
    freeze(system)
    symlink(system, Path("/nix/var/nix/profiles/system-1-link"))
    symlink("system-1-link", Path("/nix/var/nix/profiles/system"))
    # 4. Per-user profiles (users.users.USER.packages).
    for user, pkgs in plan["user_packages"].items():
        env = store_path(f"user-environment-{user}")
        shutil.rmtree(env, ignore_errors=True)
        (env / "bin").mkdir(parents=True)
        for pkg in pkgs:
            for prog in sorted((paths[pkg] / "bin").iterdir()):
                symlink(prog, env / "bin" / prog.name)
        freeze(env)
        symlink(env, Path("/etc/profiles/per-user") / user)
    # 5. What activation does at every boot: /run/current-system, the wrappers.
    Path("/etc/tmpfiles.d/stagingvm-nixos.conf").write_text(
        "# stagingvm NixOS layout: what NixOS's activation script links at boot\n"
        f"L+ /run/current-system - - - - {system}\n"
    )
    wrappers = Path("/usr/local/lib/stagingvm/nixos/suid-sgid-wrappers")
    lines = [
        "#!/bin/sh",
        "# stagingvm NixOS layout: nixos/modules/security/wrappers/default.nix, setuid part",
        "set -eu",
        "chmod 755 /run/wrappers",
        "wrapperDir=$(mktemp --directory --tmpdir=/run/wrappers wrappers.XXXXXXXXXX)",
        'chmod a+rx "$wrapperDir"',
    ]
    for prog, pkg in plan["setuid"].items():
        lines += [
            f'cp {paths[pkg]}/bin/{prog} "$wrapperDir/{prog}"',
            f'chmod 0000 "$wrapperDir/{prog}"',
            f'chown root:root "$wrapperDir/{prog}"',
            f'chmod "u+s,g-s,u+rx,g+x,o+x" "$wrapperDir/{prog}"',
        ]
    lines.append('ln --symbolic --force --no-dereference "$wrapperDir" /run/wrappers/bin')
    wrappers.write_text("\n".join(lines) + "\n")
    wrappers.chmod(0o755)
    # dockerd from its store path, as virtualisation/docker.nix's ExecStart has it.
    if "docker" in paths:
        unit = Path("/lib/systemd/system/docker.service").read_text()
        exec_start = next(x for x in unit.splitlines() if x.startswith("ExecStart="))
        dropin = Path("/etc/systemd/system/docker.service.d/stagingvm-nixos.conf")
        dropin.parent.mkdir(parents=True, exist_ok=True)
        dropin.write_text(
            "[Service]\nExecStart=\n"
            + exec_start.replace("/usr/sbin/dockerd", f"{paths['docker']}/bin/dockerd")
            + "\n"
        )
    # PAM: every service reads /etc/pam/environment (nixos/modules/security/pam.nix).
    for service in plan["pam_env"]:
        conf = Path("/etc/pam.d") / service
        text = conf.read_text()
        if PAM_ENV not in text:
            conf.write_text(text.rstrip("\n") + "\n" + PAM_ENV + "\n")
    done: dict[str, str] = {name: str(p) for name, p in paths.items()}
    done.update(system=str(system), sw=str(sw))
    json.dump(done, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
