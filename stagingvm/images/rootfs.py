"""The ``rootfs`` builder: a Debian root file system made with debootstrap, then a disk.

A root recipe runs debootstrap (its .deb downloads are cached across builds); a layered
recipe unpacks its parent's cached ``rootfs.tar.zst`` instead, so variants of one base
never run debootstrap again. Then, in a chroot with private /dev, /proc and /sys: extra
packages (apt-get, services kept from starting by a policy-rc.d), the recipe's users,
files and commands, and the per-image finishing touches (hostname, fstab, fresh SSH host
keys, an empty machine-id, root locked, credential-fed authorized_keys). Last, the tree
is packed into a bootable disk by ``stagingvm.images.disk``.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from stagingvm.images import disk
from stagingvm.images.buildenv import BuildContext
from stagingvm.images.mounts import chroot_mounts, remove_tree
from stagingvm.images.recipe import Recipe, UserSpec
from stagingvm.images.registry import DISK_TOOLS, register_builder

APT_ENV = {
    "DEBIAN_FRONTEND": "noninteractive",
    "DEBCONF_NONINTERACTIVE_SEEN": "true",
    "HOME": "/root",
}
POLICY_RC_D = "#!/bin/sh\n# stagingvm image build: start no services in the chroot\nexit 101\n"
CREDENTIAL_PREFIX = "stagingvm.authorized_keys."
TMPFILES_CONF = "/etc/tmpfiles.d/stagingvm-credentials.conf"
TMPFILES_DROPIN = "/etc/systemd/system/systemd-tmpfiles-setup.service.d/stagingvm-credentials.conf"
TAR_XATTRS = ["--xattrs", "--xattrs-include=*", "--acls", "--numeric-owner"]


def chroot(ctx: BuildContext, root: Path, argv: list[str] | tuple[str, ...]) -> str:
    return ctx.run(["chroot", str(root), *argv], env=APT_ENV)


def write_file(root: Path, path: str, content: bytes | str, mode: int = 0o644) -> Path:
    """Write *content* at guest path *path* (parents made 0755).

    A symlink at the target itself is replaced, and a parent that resolves outside
    *root* (an absolute symlink in the guest tree) is refused.
    """
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.parent.resolve().is_relative_to(root.resolve()):
        raise ValueError(f"{path} would be written outside the root file system")
    if target.is_symlink():
        target.unlink()
    data = content.encode() if isinstance(content, str) else content
    target.write_bytes(data)
    target.chmod(mode)
    return target


def debootstrap(ctx: BuildContext, root: Path) -> None:
    recipe = ctx.recipe
    argv = [
        "debootstrap",
        f"--variant={recipe.variant}",
        "--components=main",
        f"--cache-dir={ctx.deb_cache}",
        "--merged-usr",
    ]
    if recipe.packages:
        argv.append("--include=" + ",".join(recipe.packages))
    argv += [recipe.suite, str(root), recipe.mirror]
    with ctx.progress.phase(f"debootstrap {recipe.suite} ({len(recipe.packages)} packages)"):
        ctx.run(argv, timeout=3600)


def unpack_parent(ctx: BuildContext, root: Path) -> None:
    assert ctx.parent_dir is not None
    root.mkdir()
    with ctx.progress.phase(f"unpacking the root file system of {ctx.parent_dir.name}"):
        ctx.run(["tar", "--zstd", "-xpf", str(ctx.parent_dir / "rootfs.tar.zst"),
                 "-C", str(root), *TAR_XATTRS])  # fmt: skip


def install_packages(ctx: BuildContext, root: Path, packages: tuple[str, ...]) -> None:
    with ctx.progress.phase(f"installing {len(packages)} packages"):
        sources = f"deb {ctx.recipe.mirror} {ctx.recipe.suite} main\n"
        write_file(root, "/etc/apt/sources.list", sources)
        chroot(ctx, root, ["apt-get", "update", "-q"])
        chroot(ctx, root, ["apt-get", "install", "-y", "-q", "--no-install-recommends",
                           *packages])  # fmt: skip


def add_user(ctx: BuildContext, root: Path, user: UserSpec) -> None:
    argv = ["useradd", "--create-home", "--shell", user.shell, "--user-group"]
    if user.uid is not None:
        argv += ["--uid", str(user.uid)]
    if user.groups:
        argv += ["--groups", ",".join(user.groups)]
    chroot(ctx, root, [*argv, user.name])


def credential_files(users: tuple[UserSpec, ...]) -> tuple[str, str] | None:
    """The tmpfiles rules and the unit drop-in that put each user's key in place at boot.

    systemd (252+) imports SMBIOS OEM strings ``io.systemd.credential:NAME=VALUE`` as
    system credentials; a unit only sees the ones it asks for with LoadCredential=, and
    tmpfiles' ``f^`` writes a file from a credential (only if the file does not exist).
    """
    wanted = [u for u in users if u.ssh_credential]
    if not wanted:
        return None
    rules = ["# written by stagingvm: authorized_keys from systemd credentials"]
    creds = []
    for u in wanted:
        home = f"/home/{u.name}"
        rules.append(f"d {home}/.ssh 0700 {u.name} {u.name} -")
        rules.append(
            f"f^ {home}/.ssh/authorized_keys 0600 {u.name} {u.name} - {CREDENTIAL_PREFIX}{u.name}"
        )
        creds.append(f"LoadCredential={CREDENTIAL_PREFIX}{u.name}")
    dropin = "[Service]\n" + "\n".join(creds) + "\n"
    return "\n".join(rules) + "\n", dropin


def apply_recipe(ctx: BuildContext, root: Path, recipe: Recipe) -> None:
    """Packages (layered recipes only), users, files, commands: in that order."""
    if recipe.parent is not None and recipe.packages:
        install_packages(ctx, root, recipe.packages)
    for user in recipe.users:
        add_user(ctx, root, user)
    for spec in recipe.files:
        write_file(root, spec.path, spec.content, spec.mode)
        if (spec.owner, spec.group) != ("root", "root"):
            chroot(ctx, root, ["chown", f"{spec.owner}:{spec.group}", spec.path])
    for argv in recipe.commands:
        with ctx.progress.phase("running " + shlex.join(argv)[:60]):
            chroot(ctx, root, argv)


def finish(ctx: BuildContext, root: Path, uuid: str) -> None:
    """Per-image settings that every rootfs image gets, applied last."""
    recipe = ctx.recipe
    write_file(root, "/etc/hostname", recipe.hostname + "\n")
    write_file(root, "/etc/hosts", f"127.0.0.1 localhost\n127.0.1.1 {recipe.hostname}\n")
    write_file(root, "/etc/fstab", f"UUID={uuid} / ext4 rw,errors=remount-ro 0 0\n")
    creds = credential_files(recipe.all_users())
    if creds is not None:
        write_file(root, TMPFILES_CONF, creds[0])
        write_file(root, TMPFILES_DROPIN, creds[1])
    # Root: no password at all (not even an empty one); keys come from credentials.
    chroot(ctx, root, ["usermod", "--password", "*", "root"])
    # Fresh host keys for this image (a layered image must not share its parent's).
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    if (root / "usr/bin/ssh-keygen").exists():
        chroot(ctx, root, ["ssh-keygen", "-A"])
        # The public keys go into the manifest: a client can pin them before first contact.
        fps = []
        for pub in sorted((root / "etc/ssh").glob("ssh_host_*_key.pub")):
            kind, blob = pub.read_text().split()[:2]
            fps.append(f"{kind} {blob}")
        ctx.facts["ssh_host_keys"] = fps
    chroot(ctx, root, ["apt-get", "clean"])
    for lists in (root / "var/lib/apt/lists").glob("*_*"):
        lists.unlink()
    # Empty machine-id: systemd makes a fresh one at every first boot of a copy.
    write_file(root, "/etc/machine-id", "", 0o444)
    dbus_id = root / "var/lib/dbus/machine-id"
    if dbus_id.exists() and not dbus_id.is_symlink():
        dbus_id.unlink()
    write_file(root, "/etc/resolv.conf", "")


def find_kernel(root: Path) -> tuple[str, str | None]:
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise FileNotFoundError("no /boot/vmlinuz-* in the root file system (add linux-image-*)")
    kernel = kernels[-1]
    version = kernel.name.removeprefix("vmlinuz-")
    initrd = root / "boot" / f"initrd.img-{version}"
    return f"/boot/{kernel.name}", (f"/boot/{initrd.name}" if initrd.exists() else None)


def build_rootfs(ctx: BuildContext) -> None:
    recipe = ctx.recipe
    root = ctx.workdir / "root"
    if recipe.parent is None:
        debootstrap(ctx, root)
    else:
        unpack_parent(ctx, root)
    policy = root / "usr/sbin/policy-rc.d"
    uuid = disk.fs_uuid_for(recipe.content_hash())
    with chroot_mounts(root):
        write_file(root, "/usr/sbin/policy-rc.d", POLICY_RC_D, 0o755)
        resolv = root / "etc/resolv.conf"
        if resolv.is_symlink():
            resolv.unlink()
        write_file(root, "/etc/resolv.conf", Path("/etc/resolv.conf").read_bytes())
        apply_recipe(ctx, root, recipe)
        with ctx.progress.phase("finishing the root file system"):
            finish(ctx, root, uuid)
        policy.unlink()
    if recipe.keep_rootfs:
        with ctx.progress.phase("saving the root file system for layered images"):
            ctx.run(["tar", "--zstd", "-cpf", str(ctx.workdir / "rootfs.tar.zst"),
                     "-C", str(root), *TAR_XATTRS, "."])  # fmt: skip
    kernel, initrd = find_kernel(root)
    cmdline = (f"root=UUID={uuid}", "rw", "console=ttyS0,115200", "panic=1",
               *recipe.full_cmdline())  # fmt: skip
    disk.assemble(
        ctx,
        root,
        ctx.workdir / "disk.qcow2",
        size_mb=recipe.size_mb,
        kernel=kernel,
        initrd=initrd,
        cmdline=cmdline,
    )
    ctx.facts["kernel"] = kernel
    with ctx.progress.phase("removing the build tree"):
        remove_tree(root)


register_builder(
    "rootfs", build_rootfs, tools=(*DISK_TOOLS, "debootstrap", "chroot", "tar", "zstd")
)
