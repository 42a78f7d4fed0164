"""The ``tiny`` recipe: Debian's kernel + an initramfs with busybox and dropbear.

Everything comes from Debian packages, fetched with ``debootstrap --download-only`` (so
the suite, the mirror and the archive signature check are the same as for the debian
image) and unpacked with ``dpkg-deb -x``; nothing is taken from the host's own files.
The guest never leaves its initramfs: busybox init runs ``/etc/init.d/rcS``, which loads
the virtio drivers (dependency order computed here from each module's ``.modinfo``),
reads root's key from the SMBIOS OEM strings, gets a lease with udhcpc and starts
dropbear with a host key made at build time (all VMs of one image share it). busybox
``acpid`` turns the ACPI power button (``virsh shutdown``) into a clean poweroff.

The kernel and the initramfs sit on a small ext4 disk with extlinux, so the tiny guest
boots exactly like every other image.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import subprocess
from importlib import resources
from pathlib import Path

from stagingvm.images import disk
from stagingvm.images.buildenv import BuildContext
from stagingvm.images.modinfo import module_load_order
from stagingvm.images.mounts import remove_tree
from stagingvm.images.recipe import DEFAULT_MIRROR, DEFAULT_SUITE, FileSpec, Recipe
from stagingvm.images.registry import DISK_TOOLS, register_builder, register_recipe

PACKAGES = ("linux-image-cloud-amd64", "busybox-static", "dropbear-bin")
MODULES = ("virtio_pci", "virtio_net", "virtio_blk", "virtio_console", "button", "evdev")
HOSTNAME = "stagingvm-tiny"
HOST_KEY = "/etc/dropbear/dropbear_ed25519_host_key"


def _data(name: str) -> bytes:
    return resources.files("stagingvm.images").joinpath("tiny_files", name).read_bytes()


def tiny(*, suite: str = DEFAULT_SUITE, mirror: str = DEFAULT_MIRROR) -> Recipe:
    """The tiny guest: boots to SSH in seconds, even without KVM."""
    files = (
        FileSpec("/etc/init.d/rcS", _data("rcS"), 0o755),
        FileSpec("/etc/init.d/rcK", _data("rcK"), 0o755),
        FileSpec("/etc/udhcpc.script", _data("udhcpc.script"), 0o755),
        FileSpec("/etc/inittab", _data("inittab")),
        FileSpec("/etc/acpi/PWRF/00000080", _data("acpi-power"), 0o755),
        FileSpec("/etc/hostname", (HOSTNAME + "\n").encode()),
        FileSpec("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
        FileSpec("/etc/group", b"root:x:0:\n"),
        FileSpec("/etc/shells", b"/bin/sh\n"),
    )
    return Recipe(
        name="tiny",
        builder="tiny",
        suite=suite,
        mirror=mirror,
        packages=PACKAGES,
        cmdline=("console=ttyS0,115200", "panic=1", "loglevel=4"),
        files=files,
        size_mb=64,
        hostname=HOSTNAME,
        options=(("modules", ",".join(MODULES)),),
        description="Debian kernel + busybox + dropbear in an initramfs",
        keep_rootfs=False,
    )


def download_key(recipe: Recipe) -> str:
    """What decides which .deb files a tiny build needs: suite, mirror, variant, packages."""
    blob = json.dumps([recipe.suite, recipe.mirror, recipe.variant, list(recipe.packages)])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def fetch_debs(ctx: BuildContext) -> dict[str, Path]:
    """The recipe's packages and their dependencies as {package: .deb}.

    The downloaded set is kept in ``<images_dir>/.cache/tiny-<key>/``, so a variant of
    the tiny recipe with other files or modules (the e2e tests make several) builds
    without the network, e.g. inside the lab's namespace. Remove that directory to fetch
    newer packages.
    """
    recipe = ctx.recipe
    cached = ctx.settings.images_dir / ".cache" / f"tiny-{download_key(recipe)}"
    if not (cached / "debootstrap" / "debpaths").is_file():
        target = ctx.workdir / "download"
        with ctx.progress.phase("downloading kernel, busybox and dropbear packages"):
            ctx.run(
                [
                    "debootstrap", "--download-only", f"--variant={recipe.variant}",
                    f"--cache-dir={ctx.deb_cache}", "--include=" + ",".join(recipe.packages),
                    recipe.suite, str(target), recipe.mirror,
                ]
            )  # fmt: skip
        try:
            target.rename(cached)
        except OSError:
            remove_tree(target)  # another build stored the same set first
    else:
        ctx.log(f"using the packages downloaded before in {cached}")
    debs: dict[str, Path] = {}
    for line in (cached / "debootstrap" / "debpaths").read_text().splitlines():
        pkg, _, path = line.partition(" ")
        debs[pkg] = cached / path.lstrip("/")
    return debs


def unpack(ctx: BuildContext, debs: dict[str, Path], staging: Path) -> str:
    """Unpack kernel, busybox, dropbear and the libraries; return the kernel version."""
    kernel_pkgs = [p for p in debs if re.fullmatch(r"linux-image-\d.*", p)]
    if not kernel_pkgs:
        raise ctx.fail("debootstrap did not fetch a linux-image-* package")
    wanted = [sorted(kernel_pkgs)[-1], "busybox-static", "dropbear-bin", "libc6", "libcrypt1",
              "libgmp10", "libtomcrypt1", "libtommath1", "zlib1g"]  # fmt: skip
    for pkg in wanted:
        if pkg in debs:
            ctx.run(["dpkg-deb", "-x", str(debs[pkg]), str(staging)])
    versions = sorted(p.name for p in (staging / "lib/modules").iterdir())
    if not versions:
        raise ctx.fail("the kernel package has no /lib/modules")
    return versions[-1]


def packaged_loader(staging: Path) -> list[str]:
    """Run a packaged binary on the host with the packaged libc, not the host's."""
    libdirs = [staging / "lib/x86_64-linux-gnu", staging / "usr/lib/x86_64-linux-gnu"]
    loader = staging / "lib64/ld-linux-x86-64.so.2"
    return [str(loader), "--library-path", ":".join(map(str, libdirs))]


def shared_libs(ctx: BuildContext, staging: Path, binary: Path) -> list[Path]:
    """The libraries *binary* loads, resolved inside *staging* by its own loader."""
    out = ctx.run([*packaged_loader(staging), "--list", str(binary)], capture=True)
    libs = []
    for line in out.splitlines():
        m = re.search(r"=> (\S+)", line)
        if m and m.group(1).startswith(str(staging)):
            libs.append(Path(m.group(1)))
    return libs


def copy_into(src: Path, initrd: Path, guest_path: str) -> None:
    dst = initrd / guest_path.lstrip("/")
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(Path(os.path.realpath(src)).read_bytes())
    dst.chmod(0o755)


def make_tree(ctx: BuildContext, staging: Path, kver: str, initrd: Path) -> None:
    """Lay out the initramfs tree in *initrd*."""
    recipe = ctx.recipe
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "run",
              "root", "etc/dropbear", "lib/modules", "var/run"):  # fmt: skip
        (initrd / d).mkdir(parents=True, exist_ok=True)
    (initrd / "root").chmod(0o700)
    busybox = staging / "bin/busybox"
    copy_into(busybox, initrd, "/bin/busybox")
    applets = ctx.run([str(busybox), "--list-full"], capture=True).split()
    for applet in applets:
        link = initrd / applet
        if link.name == "busybox" or link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/bin/busybox")
    (initrd / "init").symlink_to("/bin/busybox")  # argv[0] "init": busybox init
    dropbear = staging / "usr/sbin/dropbear"
    copy_into(dropbear, initrd, "/usr/sbin/dropbear")
    copy_into(staging / "lib64/ld-linux-x86-64.so.2", initrd, "/lib64/ld-linux-x86-64.so.2")
    for lib in shared_libs(ctx, staging, dropbear):
        copy_into(lib, initrd, "/lib/x86_64-linux-gnu/" + lib.name)
    mod_root = staging / "lib/modules" / kver
    order = module_load_order(mod_root, recipe.option("modules").split(","))
    for name, path in order:
        copy_into(path, initrd, f"/lib/modules/{name}.ko")
    (initrd / "etc/modules.order").write_text("".join(f"{n}\n" for n, _ in order))
    ctx.facts["modules"] = [n for n, _ in order]
    for spec in recipe.files:
        dst = initrd / spec.path.lstrip("/")
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(spec.content)
        dst.chmod(spec.mode)
    # The host key, made now by the packaged dropbearkey run through the packaged loader.
    keygen = [*packaged_loader(staging), str(staging / "usr/bin/dropbearkey")]
    key = initrd / HOST_KEY.lstrip("/")
    ctx.run([*keygen, "-t", "ed25519", "-f", str(key)])
    key.chmod(0o600)
    pub = ctx.run([*keygen, "-y", "-f", str(key)], capture=True)
    ctx.facts["ssh_host_keys"] = [ln for ln in pub.splitlines() if ln.startswith("ssh-")]


def write_cpio(tree: Path, out: Path) -> None:
    """A gzip'd newc cpio of *tree*, every file owned by root, in a stable order."""
    entries = sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*"))
    proc = subprocess.run(
        ["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0", "--reproducible"],
        cwd=tree,
        input="".join(f"{e}\n" for e in entries).encode(),
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"cpio failed: {proc.stderr.decode(errors='replace')}")
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(proc.stdout)
    out.write_bytes(buf.getvalue())


def build_tiny(ctx: BuildContext) -> None:
    debs = fetch_debs(ctx)
    staging = ctx.workdir / "staging"
    staging.mkdir()
    kver = unpack(ctx, debs, staging)
    initrd_tree = ctx.workdir / "initramfs"
    initrd_tree.mkdir()
    with ctx.progress.phase("assembling the initramfs"):
        make_tree(ctx, staging, kver, initrd_tree)
        boot = ctx.workdir / "bootfs"
        (boot / "boot").mkdir(parents=True)
        write_cpio(initrd_tree, boot / "boot/initrd.img")
        vmlinuz = staging / "boot" / f"vmlinuz-{kver}"
        (boot / "boot/vmlinuz").write_bytes(vmlinuz.read_bytes())
        for f in (boot / "boot").iterdir():
            f.chmod(0o644)
    ctx.facts["kernel"] = kver
    ctx.facts["initrd_bytes"] = (boot / "boot/initrd.img").stat().st_size
    disk.assemble(
        ctx,
        boot,
        ctx.workdir / "disk.qcow2",
        size_mb=ctx.recipe.size_mb,
        kernel="/boot/vmlinuz",
        initrd="/boot/initrd.img",
        cmdline=ctx.recipe.full_cmdline(),
        label="stagingvm-tiny",
    )
    for tree in (staging, initrd_tree, boot):
        remove_tree(tree)


register_builder("tiny", build_tiny, tools=(*DISK_TOOLS, "debootstrap", "dpkg-deb", "cpio"))
register_recipe("tiny", tiny)
