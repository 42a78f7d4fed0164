"""The ``debian`` recipe: Debian 12 with systemd, openssh-server, sudo, qemu-guest-agent.

Made to boot fast and fail fast under software emulation (no libpam-systemd: an SSH login
does not wait for a systemd user manager to start, which takes seconds under TCG).
systemd-networkd does DHCP on ``en*``/``eth*`` (client id = MAC, so copies of one image
never share a lease), nothing waits for network-online, timers that do housekeeping are
masked, the journal lives in memory, and units give up after 45 s instead of 90.

No key is baked in. Root's key arrives at boot as the SMBIOS OEM string
``io.systemd.credential:ssh.authorized_keys.root=KEY`` (systemd's own tmpfiles
``provision.conf`` writes /root/.ssh/authorized_keys from it); recipe users get theirs from
``io.systemd.credential:stagingvm.authorized_keys.USER=KEY`` (see ``rootfs.credential_files``).
SSH host keys are made once per image at build time: every VM started from one image
has the same host keys (stagingvm pins them per VM anyway).

With ``docker=True`` the image also has docker.io (booted with ``apparmor=0``, which
Debian's docker needs without the apparmor package) and a local image
``stagingvm/busybox:latest``, made without any registry by a first-boot unit
(``stagingvm-docker-import.service``, ordered before multi-user.target; run
``systemctl start stagingvm-docker-import.service`` to wait for it).
"""

from __future__ import annotations

from stagingvm.images.recipe import DEFAULT_MIRROR, DEFAULT_SUITE, FileSpec, Recipe
from stagingvm.images.registry import register_recipe

BASE_PACKAGES = (
    "systemd-sysv",
    "udev",
    "dbus",
    "openssh-server",
    "sudo",
    "qemu-guest-agent",
    "linux-image-cloud-amd64",
    "iproute2",
    "ca-certificates",
    "procps",
)
DOCKER_PACKAGES = ("docker.io", "busybox-static")

BUSYBOX_ROOTFS = "/usr/local/lib/stagingvm/busybox-rootfs"
DOCKER_IMAGE = "stagingvm/busybox:latest"

NETWORK = """\
# stagingvm: DHCP on the first wired interface, nothing else.
[Match]
Name=en* eth*

[Network]
DHCP=ipv4
LinkLocalAddressing=no
IPv6AcceptRA=no

[DHCPv4]
ClientIdentifier=mac
UseDomains=yes
"""

SYSTEM_CONF = """\
# stagingvm: a throwaway test guest should fail fast, not wait 90 s per unit.
[Manager]
DefaultTimeoutStartSec=45s
DefaultTimeoutStopSec=15s
"""

JOURNALD_CONF = """\
[Journal]
Storage=volatile
RuntimeMaxUse=32M
"""

SSHD_CONF = """\
# stagingvm: keys only.
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UseDNS no
"""

DOCKER_IMPORT_SCRIPT = f"""\
#!/bin/sh
# stagingvm: make the local image {DOCKER_IMAGE} from a busybox tree, no registry needed.
set -eu
if docker image inspect {DOCKER_IMAGE} >/dev/null 2>&1; then
    exit 0
fi
tar -C {BUSYBOX_ROOTFS} -c . | docker import -c 'CMD ["/bin/sh"]' - {DOCKER_IMAGE}
mkdir -p /var/lib/stagingvm
touch /var/lib/stagingvm/busybox-imported
echo "stagingvm: docker image {DOCKER_IMAGE} ready" >/dev/console
"""

DOCKER_IMPORT_UNIT = """\
[Unit]
Description=stagingvm: import the local busybox image into docker
After=docker.service
Requires=docker.service
ConditionPathExists=!/var/lib/stagingvm/busybox-imported

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/lib/stagingvm/docker-import-busybox

[Install]
WantedBy=multi-user.target
"""

# A small initramfs (only what finds a virtio/SCSI root disk): the BIOS loads it and the
# kernel unpacks it several times faster under TCG than the default "most" set.
INITRAMFS_CONF = "MODULES=list\n"
INITRAMFS_MODULES = "virtio_pci\nvirtio_blk\nvirtio_scsi\nsd_mod\next4\n"
# Drivers udev would load for emulated hardware nobody uses (each costs time under TCG).
MODPROBE_CONF = "".join(
    f"blacklist {m}\n" for m in ("pcspkr", "floppy", "joydev", "serio_raw", "bochs")
)

# docker and containerd start after sshd: under TCG they would otherwise take the CPU
# while sshd starts, and the VM counts as ready when SSH answers.
AFTER_SSH = "[Unit]\nAfter=ssh.service\n"

MASKED_UNITS = (
    "systemd-networkd-wait-online.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "systemd-timesyncd.service",
    # Static module loads and debug mounts a test guest never uses: each is a unit to
    # start, and a modprobe costs seconds under TCG.
    "modprobe@drm.service",
    "modprobe@efi_pstore.service",
    "modprobe@fuse.service",
    "modprobe@loop.service",
    "modprobe@dm_mod.service",
    "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount",
    "sys-fs-fuse-connections.mount",
    # The serial console has its own getty (serial-getty@ttyS0, from console=ttyS0).
    "getty@tty1.service",
)

# Run once in the chroot: a busybox tree for `docker import`, with relative applet links
# so they resolve inside a container.
MAKE_BUSYBOX_ROOTFS = f"""\
#!/bin/sh
set -eu
d={BUSYBOX_ROOTFS}
mkdir -p "$d/bin" "$d/tmp" "$d/etc" "$d/proc" "$d/sys" "$d/dev" "$d/root"
cp /bin/busybox "$d/bin/busybox"
cd "$d/bin"
for a in $(./busybox --list); do
    [ "$a" = busybox ] || ln -sf busybox "$a"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$d/etc/passwd"
echo 'root:x:0:' > "$d/etc/group"
"""


def debian(
    *,
    docker: bool = False,
    suite: str = DEFAULT_SUITE,
    mirror: str = DEFAULT_MIRROR,
    extra_packages: tuple[str, ...] = (),
    size_mb: int | None = None,
) -> Recipe:
    """Debian 12 guest; ``docker=True`` adds docker.io and a local busybox image.

    The docker variant is layered on the plain one, so both share one debootstrap.
    """
    base = Recipe(
        name="debian",
        builder="rootfs",
        suite=suite,
        mirror=mirror,
        packages=BASE_PACKAGES + tuple(extra_packages),
        # loglevel=4: kernel warnings and errors on the console, not every driver's hello
        # (each console line is slow under TCG); systemd's status lines stay.
        cmdline=("loglevel=4",),
        files=(
            FileSpec("/etc/systemd/network/20-stagingvm.network", NETWORK.encode()),
            FileSpec("/etc/systemd/system.conf.d/stagingvm.conf", SYSTEM_CONF.encode()),
            FileSpec("/etc/systemd/journald.conf.d/stagingvm.conf", JOURNALD_CONF.encode()),
            FileSpec("/etc/ssh/sshd_config.d/stagingvm.conf", SSHD_CONF.encode()),
            FileSpec("/etc/initramfs-tools/conf.d/stagingvm.conf", INITRAMFS_CONF.encode()),
            FileSpec("/etc/initramfs-tools/modules", INITRAMFS_MODULES.encode()),
            FileSpec("/etc/modprobe.d/stagingvm.conf", MODPROBE_CONF.encode()),
        ),
        commands=(
            ("systemctl", "enable", "systemd-networkd.service"),
            ("systemctl", "mask", *MASKED_UNITS),
            ("update-initramfs", "-u", "-k", "all"),
        ),
        size_mb=2048 if size_mb is None or docker else size_mb,
        hostname="stagingvm-debian",
        description="Debian 12 + systemd, openssh-server, sudo, qemu-guest-agent",
    )
    if not docker:
        return base
    lib = "/usr/local/lib/stagingvm"
    return base.layered(
        "debian-docker",
        packages=DOCKER_PACKAGES,
        cmdline=("apparmor=0",),
        files=(
            FileSpec(f"{lib}/docker-import-busybox", DOCKER_IMPORT_SCRIPT.encode(), 0o755),
            FileSpec(f"{lib}/make-busybox-rootfs", MAKE_BUSYBOX_ROOTFS.encode(), 0o755),
            FileSpec(
                "/etc/systemd/system/stagingvm-docker-import.service",
                DOCKER_IMPORT_UNIT.encode(),
            ),
            FileSpec("/etc/systemd/system/docker.service.d/stagingvm.conf", AFTER_SSH.encode()),
            FileSpec("/etc/systemd/system/containerd.service.d/stagingvm.conf", AFTER_SSH.encode()),
        ),
        commands=(
            (f"{lib}/make-busybox-rootfs",),
            ("systemctl", "enable", "docker.service", "stagingvm-docker-import.service"),
        ),
        size_mb=size_mb or 4096,
        description=base.description + ", docker.io with a local busybox image",
    ).with_changes(keep_rootfs=True)  # the policy lab's designs build on it


def debian_docker(**options: object) -> Recipe:
    return debian(docker=True, **options)  # type: ignore[arg-type]


register_recipe("debian", debian)
register_recipe("debian-docker", debian_docker)
