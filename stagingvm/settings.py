"""The effective settings of one run: a frozen dataclass built by the caller.

Nothing is read at import time. ``stagingvm.config.load`` builds a ``Settings`` from defaults,
config files, ``STAGINGVM_*`` variables and command-line flags, remembering where each
value came from. Library code receives a ``Settings`` and never looks anywhere else.

The fields mirror the old NixOS module ``services.staging-vm`` (network.name, bridge, subnet,
dhcpStart/End, storagePool, dataDir, memory, vcpus) plus what the new tool needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from stagingvm.datadir import user_keys_dir

DEFAULT_URI = "qemu:///system"
# Not 192.168.122.0/24: that is libvirt's own ``default`` network on every host.
DEFAULT_SUBNET = "192.168.150.0/24"


@dataclass(frozen=True)
class NetworkSettings:
    name: str = "staging"
    bridge: str = "virbr-staging"
    subnet: str = DEFAULT_SUBNET
    dhcp_start: str = "192.168.150.10"
    dhcp_end: str = "192.168.150.254"


@dataclass(frozen=True)
class SSHSettings:
    user: str = "root"
    # None: stagingvm's own key, <data_dir>/keys/id_ed25519, made on first use (0600);
    # <data_dir>/keys/users/<uid>/id_ed25519 in a shared data dir (stagingvm.datadir).
    key: Path | None = None


@dataclass(frozen=True)
class RemoteSettings:
    """How guests of a remote libvirt host are reached (``stagingvm.ssh.jump``)."""

    # "user@host[:port]" to reach guests through; "": the qemu+ssh URI's own host (none
    # for a local URI or a remote non-SSH one).
    jump: str = ""
    # The key to log into that host; None: the URI's ?keyfile=, else stagingvm's own key.
    key: Path | None = None
    # An OpenSSH known_hosts file that vouches for the host's first key; None: the user's
    # ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts (what qemu+ssh itself checks).
    known_hosts: Path | None = None


@dataclass(frozen=True)
class Timeouts:
    """Seconds for each wait phase, for a guest with working KVM.

    Under software emulation (TCG) every figure is multiplied by ``tcg_factor``.
    """

    running: float = 30.0
    lease: float = 120.0
    banner: float = 120.0
    login: float = 60.0
    shutdown: float = 60.0
    tcg_factor: float = 4.0

    def factor(self, domain_type: str) -> float:
        """The time-out factor of a guest of *domain_type*: ``tcg_factor`` under TCG, else 1."""
        return self.tcg_factor if domain_type == "qemu" else 1.0


@dataclass(frozen=True)
class Settings:
    uri: str = DEFAULT_URI
    # Several libvirt hosts: start/test place a VM on the one with the most free memory
    # (``stagingvm.vm.hosts``); (): just ``uri``.
    hosts: tuple[str, ...] = ()
    network: NetworkSettings = field(default_factory=NetworkSettings)
    pool_name: str = "staging"
    storage_pool: Path = Path("/var/lib/libvirt/images/stagingvm")
    data_dir: Path = Path("/var/lib/staging-vm")
    memory: int = 2048  # MiB
    vcpus: int = 2
    ssh: SSHSettings = field(default_factory=SSHSettings)
    timeouts: Timeouts = field(default_factory=Timeouts)
    remote: RemoteSettings = field(default_factory=RemoteSettings)
    accel: str = "auto"  # auto | kvm | tcg

    @property
    def host_uris(self) -> tuple[str, ...]:
        """The libvirt hosts VMs may run on: ``hosts``, or else just ``uri``."""
        return self.hosts or (self.uri,)

    # Paths derived from data_dir: one place decides the layout of the data dir.
    @property
    def keys_dir(self) -> Path:
        """This user's keys: ``keys/``, or ``keys/users/<uid>/`` in a shared data dir."""
        return user_keys_dir(self.data_dir)

    @property
    def ssh_key_path(self) -> Path:
        return self.ssh.key if self.ssh.key is not None else self.keys_dir / "id_ed25519"

    @property
    def vms_dir(self) -> Path:
        return self.data_dir / "vms"

    def vm_dir(self, name: str) -> Path:
        """Per-VM state (known_hosts, console log). ``name`` must be validated first."""
        return self.vms_dir / name

    @property
    def images_dir(self) -> Path:
        return self.data_dir / "images"

    @property
    def locks_dir(self) -> Path:
        return self.data_dir / "locks"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"
