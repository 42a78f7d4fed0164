"""A VM on a second libvirt "host" over qemu+ssh://, reached through that host.

The second host is a network namespace of its own with its own libvirtd and sshd
(``tests/e2e/remotehost.py``); the runner (this test, in the lab namespace) reaches it only
over SSH: libvirt's API over ``qemu+ssh://``, the image upload over libvirt's stream, and the
guest through a ``direct-tcpip`` channel of an SSH connection to the host. Its guests' NAT
network exists only inside that namespace, so nothing but the jump can reach them.

Opt-in (``STAGINGVM_E2E_REMOTE=1``): a boot under software emulation through a second
libvirtd takes minutes on a loaded CI machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import ARTIFACTS_DIR, CLI_CODE, LAB_URI, REPO, Run, build, keep_artifact
from tests.e2e.remotehost import RemoteHost, forget_logs, make_remote_host
from tests.e2e.test_checks_lab import assert_design_b_escapes

pytestmark = pytest.mark.skipif(
    os.environ.get("STAGINGVM_E2E_REMOTE") != "1",
    reason="the two-host lab test is opt-in: STAGINGVM_E2E_REMOTE=1",
)


@pytest.fixture(scope="module")
def host2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteHost]:
    host = make_remote_host(tmp_path_factory.mktemp("host2"), os.getpid())
    try:
        host.start()
        yield host
    finally:
        failures = host.stop()
        assert not failures, "second host left something behind: " + "; ".join(failures)


def cli(
    run: Run,
    host: RemoteHost,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 900,
) -> subprocess.CompletedProcess[str]:
    """``pr-test-vm ARGS`` with the run's settings, on the second host."""
    variables = run.env()
    variables.update(
        {
            "STAGINGVM_URI": host.uri,
            "STAGINGVM_REMOTE_KNOWN_HOSTS": str(host.known_hosts),
            "STAGINGVM_ACCEL": "tcg",  # no KVM probe guest on the second host
            "STAGINGVM_STORAGE_POOL": f"/var/lib/libvirt/images/{run.settings.pool_name}",
            **(env or {}),
        }
    )
    return subprocess.run(
        [sys.executable, "-c", CLI_CODE, *args],
        env=variables,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=REPO,
    )


def test_a_vm_on_the_remote_host_through_the_jump(
    run: Run, host2: RemoteHost, tmp_path: Path
) -> None:
    name = run.vm_name("remote")
    disk = build(run, "tiny")
    imported = cli(run, host2, "build", "--image", str(disk), "--name", "tiny")  # libvirt stream
    assert imported.returncode == 0, imported.stderr
    started_at = time.monotonic()
    started = cli(run, host2, "start", name, "--base", "tiny")
    took = time.monotonic() - started_at
    assert started.returncode == 0, started.stderr
    print(f"start over qemu+ssh with the wait through the jump: {took:.1f} s")
    try:
        # The host's key was pinned from the file that vouches for it; the guest's too.
        pins = (run.settings.data_dir / "hosts" / "known_hosts").read_text()
        assert pins.split()[:2] == [host2.address, host2.known_hosts.read_text().split()[1]]
        status = cli(run, host2, "status", name, "--json")
        assert status.returncode == 0, status.stderr
        doc = json.loads(status.stdout)
        assert doc["host"] == host2.uri and doc["state"] == "running"
        ssh = cli(run, host2, "ssh", name, "--", "cat", "/proc/sys/kernel/hostname")
        assert ssh.returncode == 0, ssh.stderr
        assert ssh.stdout.strip()
        # OpenSSH through ssh-config's ProxyJump; the jump host pinned the same way.
        config = cli(run, host2, "ssh-config", name)
        assert config.returncode == 0, config.stderr
        assert f"ProxyJump root@{host2.address}" in config.stdout
        cfg = tmp_path / "ssh_config"
        cfg.write_text(
            config.stdout + f"\nHost {host2.address}\n  IdentityFile {host2.client_key}\n"
            f"  IdentitiesOnly yes\n  UserKnownHostsFile {host2.known_hosts}\n"
            "  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n"
        )
        ssh_bin = shutil.which("ssh")
        assert ssh_bin is not None
        openssh = subprocess.run(
            [ssh_bin, "-F", str(cfg), "-o", "BatchMode=yes", name, "echo", "through-the-jump"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert openssh.returncode == 0, openssh.stderr
        assert openssh.stdout.strip() == "through-the-jump"
        # Both hosts at once: list shows where each VM is.
        both = cli(run, host2, "--uri", LAB_URI, "--uri", host2.uri, "list")
        assert both.returncode == 0, both.stderr
        header, *rows = both.stdout.splitlines()
        assert header.split()[:3] == ["NAME", "STATE", "HOST"]
        assert [name, "running", host2.address] in [row.split()[:3] for row in rows]
    finally:
        destroyed = cli(run, host2, "destroy", name)
        forget_logs(name)
    assert destroyed.returncode == 0, destroyed.stderr
    gone = cli(run, host2, "status", name)
    assert gone.returncode == 3, gone.stderr  # not found


@pytest.mark.skipif(
    os.environ.get("STAGINGVM_E2E_REMOTE_DESIGN") != "1",
    reason="a policy lab battery on the second host takes minutes: STAGINGVM_E2E_REMOTE_DESIGN=1",
)
def test_design_b_on_the_remote_host_gets_the_local_verdict(
    run: Run, host2: RemoteHost, tmp_path: Path
) -> None:
    """``pr-test-vm test`` of the policy lab's design B on the second host: the verdict and
    the escapes the local run asserts (tests/e2e/test_checks_lab.py), and the same escaped
    probes as the local run's report when one was kept."""
    name = run.vm_name("remote-design-b")
    out = tmp_path / "reports"
    out.mkdir()
    try:
        done = cli(
            run, host2,
            "test", "--image", str(build(run, "design-b")),
            "--policy", "builtin:ai-worker", "--name", name,
            "--report-json", str(out / "report.json"), "--timeout", "3000",
            # Memory and vCPUs as the local run; a Debian boot on a loaded machine under
            # TCG took longer than the run's 30 s (x 4) lease wait twice here.
            env={"STAGINGVM_MEMORY": "1024", "STAGINGVM_VCPUS": "2",
                 "STAGINGVM_TIMEOUTS_LEASE": "120", "STAGINGVM_TIMEOUTS_BANNER": "120"},
            timeout=3300,  # the battery took more than 15 minutes here (load average 8-11)
        )  # fmt: skip
    finally:
        forget_logs(name)
    assert (out / "report.json").exists(), done.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    keep_artifact("remote-design-b.json", json.dumps(report, indent=2, sort_keys=True))
    assert done.returncode == 10, (done.stderr[-3000:], report.get("infrastructure"))
    escaped = assert_design_b_escapes(report)
    local = ARTIFACTS_DIR / "design-b.json"
    if local.exists():
        kept = json.loads(local.read_text())
        assert report["verdict"] == kept["verdict"]
        same = {p["id"] for p in kept["probes"] if p["outcome"] == "escaped"}
        print(f"escaped remotely: {len(escaped)}, locally: {len(same)}, "
              f"differ: {sorted(set(escaped) ^ same)}")  # fmt: skip
        assert set(escaped) == same
    gone = cli(run, host2, "status", name)
    assert gone.returncode == 3, gone.stderr  # test destroyed it


def test_a_host_taken_down_gives_a_clean_error_naming_it(run: Run, host2: RemoteHost) -> None:
    host2.take_down()
    status = cli(run, host2, "status", "ghost")
    assert status.returncode == 4, status.stderr  # libvirt unavailable
    assert status.stderr.startswith(f"error: cannot connect to libvirt at {host2.uri}")
    assert "Traceback" not in status.stderr
    both = cli(run, host2, "--uri", LAB_URI, "--uri", host2.uri, "list")
    assert both.returncode == 0, both.stderr
    assert f"warning: host {host2.uri} left out" in both.stderr
    placed = cli(
        run, host2, "--uri", LAB_URI, "--uri", host2.uri, "start", "ghost", "--base", "tiny"
    )
    assert placed.returncode == 4, placed.stderr
    assert host2.uri in placed.stderr and "Traceback" not in placed.stderr
