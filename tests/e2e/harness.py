"""Helpers of the end-to-end suite: the run's settings, the CLI as a subprocess, clean-up.

Every run gets its own libvirt network, bridge, subnet, pool and VM name prefix (derived from
the pid), so parallel CI runs on one host do not race. Images come from the image builder and
are cached outside the repository (``STAGINGVM_E2E_CACHE``) so reruns are fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libvirt

from stagingvm.images import Recipe
from stagingvm.settings import NetworkSettings, Settings, Timeouts
from stagingvm.virt import domain as vdomain
from stagingvm.virt import network as vnetwork
from stagingvm.virt import storage
from stagingvm.virt.subnets import host_routes, network_subnets
from stagingvm.vm.manager import Manager

LAB_NAMESPACE = os.environ.get("STAGINGVM_LAB_NAMESPACE", "stagingvm-lab")
LAB_URI = "qemu:///system"
CACHE_DIR = Path(os.environ.get("STAGINGVM_E2E_CACHE", "/var/cache/stagingvm-e2e"))
RUNS_DIR = Path(os.environ.get("STAGINGVM_E2E_RUNS", "/var/tmp/stagingvm-e2e"))
REPO = Path(__file__).resolve().parents[2]
FIXTURE_FLAKE = REPO / "tests" / "nix" / "fixtures" / "flake"
CLI_CODE = "import sys; sys.argv[0] = 'pr-test-vm'; from stagingvm.cli.app import main; main()"
"""``python -c CLI_CODE ARGS`` runs ``pr-test-vm ARGS`` from this checkout."""
ARTIFACTS_DIR = Path(os.environ.get("STAGINGVM_E2E_ARTIFACTS", RUNS_DIR / "artifacts"))
"""Reports of the policy lab's checks are copied here (kept after the run, for CI to upload)."""
KEEP = os.environ.get("STAGINGVM_E2E_KEEP") == "1"
"""Keep the run's data dir (console logs) after the run, for debugging. VMs are always removed."""


def free_subnet(conn: libvirt.virConnect, seed: int) -> ipaddress.IPv4Network:
    """A /24 in 192.168.160-249 that no libvirt network and no host route uses."""
    taken = [r.network for r in host_routes()]
    for net in conn.listAllNetworks():
        with contextlib.suppress(libvirt.libvirtError):  # others' networks come and go
            taken += network_subnets(net.XMLDesc(0))
    for i in range(90):
        candidate = ipaddress.IPv4Network(f"192.168.{160 + (seed + i) % 90}.0/24")
        if not any(candidate.overlaps(other) for other in taken):
            return candidate
    raise RuntimeError("no free /24 in 192.168.160.0-192.168.249.0 for the e2e network")


@dataclass
class Run:
    """One e2e run: its settings, and the names it may create (all start with ``prefix``)."""

    settings: Settings
    prefix: str
    cache_settings: Settings
    made_vms: set[str] = field(default_factory=set)

    def vm_name(self, what: str) -> str:
        name = f"{self.prefix}{what}"
        self.made_vms.add(name)
        return name

    def env(self) -> dict[str, str]:
        """STAGINGVM_* variables that give a CLI subprocess exactly these settings."""
        s = self.settings
        values: dict[str, Any] = {
            "URI": s.uri,
            "NETWORK_NAME": s.network.name,
            "NETWORK_BRIDGE": s.network.bridge,
            "NETWORK_SUBNET": s.network.subnet,
            "NETWORK_DHCP_START": s.network.dhcp_start,
            "NETWORK_DHCP_END": s.network.dhcp_end,
            "POOL_NAME": s.pool_name,
            "STORAGE_POOL": s.storage_pool,
            "DATA_DIR": s.data_dir,
            "MEMORY": s.memory,
            "VCPUS": s.vcpus,
            "ACCEL": s.accel,
            "SSH_USER": s.ssh.user,
            "TIMEOUTS_RUNNING": s.timeouts.running,
            "TIMEOUTS_LEASE": s.timeouts.lease,
            "TIMEOUTS_BANNER": s.timeouts.banner,
            "TIMEOUTS_LOGIN": s.timeouts.login,
            "TIMEOUTS_SHUTDOWN": s.timeouts.shutdown,
            "TIMEOUTS_TCG_FACTOR": s.timeouts.tcg_factor,
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("STAGINGVM_")}
        env.update({f"STAGINGVM_{k}": str(v) for k, v in values.items()})
        env["STAGINGVM_CONFIG"] = str(s.data_dir / "empty-config.toml")
        return env

    def cli(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[bytes]:
        """Run ``pr-test-vm ARGS`` in a fresh process (stdout and stderr kept apart)."""
        return subprocess.run(
            [sys.executable, "-c", CLI_CODE, *args],
            env=self.env(),
            capture_output=True,
            timeout=timeout,
            check=False,
            cwd=REPO,
        )


def make_run(conn: libvirt.virConnect) -> Run:
    pid = os.getpid()
    tag = f"e2e{pid}"
    subnet = free_subnet(conn, pid)
    hosts = list(subnet.hosts())
    data_dir = RUNS_DIR / f"run-{pid}"
    data_dir.mkdir(parents=True, exist_ok=True)
    # QEMU (user libvirt-qemu) must reach files below it, e.g. the accelerator probe payload.
    for path in (RUNS_DIR, data_dir):
        path.chmod(0o755)
    (data_dir / "empty-config.toml").write_text("# e2e run: settings come from STAGINGVM_*\n")
    settings = Settings(
        uri=LAB_URI,
        network=NetworkSettings(
            name=tag,
            bridge=f"vbr-{tag}"[:15],
            subnet=str(subnet),
            dhcp_start=str(hosts[9]),
            dhcp_end=str(hosts[-1]),
        ),
        pool_name=tag,
        storage_pool=Path(f"/var/lib/libvirt/images/stagingvm-{tag}"),
        data_dir=data_dir,
        memory=256,
        vcpus=1,
        accel=os.environ.get("STAGINGVM_E2E_ACCEL", "auto"),
        # The tiny guest answers SSH within ~20 s under TCG, a lab design gets its lease after
        # 90 s on a quiet host and after more than 120 s at load 8-10 (two lab runs failed
        # so): x tcg_factor the lease and the banner wait 4 minutes. Tests of a time-out set
        # their own (test_guests.py).
        timeouts=Timeouts(running=30, lease=60, banner=60, login=30, shutdown=30),
    )
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    CACHE_DIR.chmod(0o755)
    return Run(settings, f"t{pid}-", Settings(data_dir=CACHE_DIR))


def keep_artifact(name: str, content: str) -> Path:
    """Write *content* to ``ARTIFACTS_DIR/name`` (replacing an older one) and return the path."""
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS_DIR / name
    path.write_text(content, encoding="utf-8")
    return path


def assert_left_nothing(conn: libvirt.virConnect, run: Run, name: str) -> None:
    """No domain, overlay volume or per-VM data of *name* is left."""
    from stagingvm.vm.manager import overlay_name

    assert name not in [d.name() for d in conn.listAllDomains(0)]
    pool = storage.pool_lookup(conn, run.settings.pool_name)
    if pool is not None:
        pool.refresh(0)
        assert storage.volume_lookup(pool, overlay_name(name)) is None
    assert not run.settings.vm_dir(name).exists()


def clean_up(run: Run, conn: libvirt.virConnect) -> list[str]:
    """Remove every domain, the network, the pool and the data dir the run made.

    Tries everything and returns what failed: called from a finalizer, after failures too.
    """
    failures: list[str] = []

    def attempt(what: str, action: Any) -> None:
        try:
            action()
        except Exception as exc:
            failures.append(f"{what}: {exc}")

    for dom in conn.listAllDomains(0):
        name = dom.name()
        if name.startswith(run.prefix) or name in run.made_vms:
            if dom.isActive():
                attempt(f"power off {name}", dom.destroy)
            attempt(f"undefine {name}", lambda d=dom: vdomain.undefine(d))  # with its snapshots
    net = vnetwork.lookup(conn, run.settings.network.name)
    if net is not None:
        if net.isActive():
            attempt("stop the network", net.destroy)
        attempt("undefine the network", net.undefine)
    pool = storage.pool_lookup(conn, run.settings.pool_name)
    if pool is not None:
        if pool.isActive():
            with contextlib.suppress(libvirt.libvirtError):
                pool.refresh(0)
            for vol in pool.listAllVolumes(0):
                attempt(f"delete volume {vol.name()}", lambda v=vol: v.delete(0))
            attempt("stop the pool", pool.destroy)
        attempt("undefine the pool", pool.undefine)
    if run.settings.storage_pool.exists():
        attempt("remove the pool dir", lambda: run.settings.storage_pool.rmdir())
    if not KEEP:
        shutil.rmtree(run.settings.data_dir, ignore_errors=True)
    return failures


def e2e_recipes() -> dict[str, Any]:
    """Every image the e2e suite boots: tiny, two variants that fail on purpose, a debian
    with docker and a recipe user, and the policy lab's three designs."""
    from stagingvm.checks.designs import DESIGNS, LAB_PACKAGES, NIXOS_DESIGNS
    from stagingvm.images import FileSpec, get_recipe

    tiny = get_recipe("tiny")
    modules = tiny.option("modules").split(",")
    nonet = ",".join(m for m in modules if m not in NET_MODULES)
    script = b"#!/bin/sh\necho 'stagingvm-e2e: this guest powers itself off'\npoweroff -f\n"
    files = tuple(f for f in tiny.files if f.path != "/etc/init.d/rcS")
    from stagingvm.images import UserSpec

    return {
        # debian-docker plus a recipe user whose key comes from a credential (test_images.py)
        "e2e-debian-user": get_recipe("debian", docker=True).layered(
            "e2e-debian-user", users=(UserSpec(E2E_USER, groups=("docker",)),)
        ),
        # the policy lab's designs in both layouts (test_checks_lab.py, test_nix_ci_e2e.py)
        **{name: get_recipe(name) for name in (*DESIGNS, *NIXOS_DESIGNS)},
        # a plain Debian root file system with what the battery needs, kept as a tarball:
        # test_own_image.py makes a disk of its own from it
        "e2e-lab-rootfs": get_recipe("debian", docker=True)
        .layered("e2e-lab-rootfs", packages=LAB_PACKAGES)
        .with_changes(keep_rootfs=True),
        "tiny": tiny,
        # no virtio_net driver: the guest boots but never asks for a lease
        "tiny-nonet": dataclasses.replace(
            tiny,
            name="tiny-nonet",
            options=tuple((k, nonet if k == "modules" else v) for k, v in tiny.options),
        ),
        # its init powers the guest off at once
        "tiny-poweroff": dataclasses.replace(
            tiny, name="tiny-poweroff", files=(*files, FileSpec("/etc/init.d/rcS", script, 0o755))
        ),
    }


NET_MODULES = {"virtio_net", "net_failover", "failover"}
E2E_USER = "e2e-user"


def build(run: Run, name: str | Recipe) -> Path:
    """The disk of e2e image *name* (or of this recipe), from the cache.

    Building needs the package registry, which the lab namespace cannot reach, so images are
    built beforehand, outside it: ``python -m tests.e2e.harness`` (CI does this first).
    """
    from stagingvm.images import cached_disk

    recipe = e2e_recipes()[name] if isinstance(name, str) else name
    disk: Path | None = cached_disk(recipe, run.cache_settings)
    if disk is None:
        import pytest

        pytest.fail(
            f"e2e image {recipe.name!r} is not built in {CACHE_DIR}: run "
            "`python -m tests.e2e.harness` outside the lab namespace first"
        )
    return disk


def base(run: Run, manager: Manager, name: str) -> str:
    """Import e2e image *name* as the base of the same name."""
    manager.import_base(build(run, name), name, source_key=str(build(run, name)))
    return name


def build_all() -> None:
    """Build every e2e image into CACHE_DIR (run outside the lab: it downloads packages)."""
    from stagingvm.images import build_image

    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    for name, recipe in e2e_recipes().items():
        print(f"{name}: {build_image(recipe, Settings(data_dir=CACHE_DIR))}")


if __name__ == "__main__":
    build_all()
