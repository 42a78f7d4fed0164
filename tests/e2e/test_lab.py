"""The lab's building blocks on real processes and real namespaces of this test's own.

The shared lab (``stagingvm-lab``) is only looked at and adopted, never torn down: its
daemons serve other users. Teardown is tested on namespaces and stand-in daemons made here.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stagingvm.errors import LabError
from stagingvm.lab import daemons, lab, netns
from tests.e2e.harness import LAB_NAMESPACE


@pytest.fixture
def private_ns() -> Iterator[str]:
    name = f"lab-test-{os.getpid()}"
    yield name
    for proc in netns.processes_in(name):
        if proc.pid != os.getpid():
            os.kill(proc.pid, 9)
    netns.delete(name)


@pytest.fixture
def fake_daemon(tmp_path: Path) -> Iterator[daemons.Daemon]:
    """A stand-in daemon: a copy of sleep with a unique command name that forks and writes a
    pid file, like virtlogd --daemon does."""
    binary = tmp_path / f"svmfake{os.getpid() % 100000}"
    shutil.copy("/bin/sleep", binary)
    pid_file = tmp_path / "fake.pid"
    argv = ("sh", "-c", f"{binary} 600 >/dev/null 2>&1 & echo $! > {pid_file}")
    daemon = daemons.Daemon(binary.name[:15], argv, pid_file)
    yield daemon
    for pid in daemons.running_pids(daemon):
        os.kill(pid, 9)


def test_namespace_create_is_idempotent_and_delete_cleans(private_ns: str) -> None:
    assert not netns.exists(private_ns)
    assert netns.create(private_ns) is True
    assert netns.create(private_ns) is False
    links = subprocess.run(
        ["ip", "-n", private_ns, "-o", "link", "show", "lo"], capture_output=True, text=True
    ).stdout
    assert "UP" in links
    sleeper = subprocess.Popen(netns.exec_argv(private_ns, ["sleep", "60"]))
    try:
        # ip netns exec execs sleep in place: same pid, other namespace
        for _ in range(50):
            if netns.in_namespace(sleeper.pid, private_ns):
                break
            subprocess.run(["sleep", "0.05"])
        assert netns.in_namespace(sleeper.pid, private_ns)
        assert not netns.in_namespace(sleeper.pid, LAB_NAMESPACE)
        assert sleeper.pid in [p.pid for p in netns.processes_in(private_ns)]
        assert not netns.self_in_namespace(private_ns)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert netns.delete(private_ns) is True
    assert not netns.exists(private_ns)
    assert netns.delete(private_ns) is False
    assert netns.processes_in(private_ns) == []


def test_daemon_start_adopt_stop(private_ns: str, fake_daemon: daemons.Daemon) -> None:
    netns.create(private_ns)
    assert daemons.state(fake_daemon, private_ns).pid is None
    started = daemons.ensure(fake_daemon, private_ns, timeout=5)
    assert started.action == "started" and started.in_namespace
    assert started.pid is not None and netns.in_namespace(started.pid, private_ns)
    adopted = daemons.ensure(fake_daemon, private_ns, timeout=5)
    assert adopted.action == "adopted" and adopted.pid == started.pid
    # From the point of view of another namespace it runs outside: refused, not duplicated.
    assert daemons.outside(fake_daemon, LAB_NAMESPACE) == [started.pid]
    with pytest.raises(LabError, match="runs outside the lab namespace"):
        daemons.ensure(fake_daemon, LAB_NAMESPACE, timeout=5)
    # Stopping it from the wrong namespace leaves it alone.
    assert daemons.stop(fake_daemon, LAB_NAMESPACE).action == ""
    assert netns.process_comm(started.pid) == fake_daemon.comm
    stopped = daemons.stop(fake_daemon, private_ns, timeout=5)
    assert stopped.action == "stopped" and stopped.pid == started.pid
    assert netns.process_comm(started.pid) is None
    assert daemons.running_pids(fake_daemon) == []


def test_stale_pid_file_is_not_trusted(tmp_path: Path, fake_daemon: daemons.Daemon) -> None:
    fake_daemon.pid_file.write_text(f"{os.getpid()}\n")  # a live process, but not the daemon
    assert daemons.running_pids(fake_daemon) == []
    fake_daemon.pid_file.write_text("garbage")
    assert daemons.read_pid(fake_daemon.pid_file) is None


def test_status_and_up_adopt_the_shared_lab() -> None:
    before = lab.status(LAB_NAMESPACE)
    assert before.ready, before.to_json()
    pids = {d.name: d.pid for d in before.daemons}
    assert pids["libvirtd"] == daemons.read_pid(Path("/run/libvirtd.pid"))
    assert pids["virtlogd"] == daemons.read_pid(Path("/run/virtlogd.pid"))
    result = lab.up(LAB_NAMESPACE)
    assert [d.action for d in result.daemons] == ["adopted", "adopted"]
    assert {d.name: d.pid for d in result.daemons} == pids
    assert result.ready
    assert not any(n.name == "default" and n.autostart for n in result.networks)


def test_up_refuses_when_libvirtd_runs_elsewhere(private_ns: str) -> None:
    # The shared lab's libvirtd runs outside private_ns: a lab there must refuse, create nothing.
    with pytest.raises(LabError, match="outside the lab namespace"):
        lab.up(private_ns)
    assert not netns.exists(private_ns)


def test_down_of_another_namespace_leaves_the_shared_daemons(private_ns: str) -> None:
    netns.create(private_ns)
    report = lab.down(private_ns)
    assert report.namespace_deleted
    assert [d for d in report.stopped if d.action == "stopped"] == []
    assert not netns.exists(private_ns)
    assert lab.status(LAB_NAMESPACE).ready


def test_a_log_only_daemon_outside_is_adopted_not_refused(
    private_ns: str, fake_daemon: daemons.Daemon
) -> None:
    log_only = dataclasses.replace(fake_daemon, network_facing=False)
    subprocess.run(list(log_only.argv), check=True)  # started here, outside private_ns
    netns.create(private_ns)
    got = daemons.ensure(log_only, private_ns, timeout=5)
    assert got.action == "adopted" and not got.in_namespace
    assert got.notes and "only writes logs" in got.notes[0]
    assert daemons.stop(log_only, private_ns).action == ""  # never stopped from outside


JOB = """
import signal, sys, time
from pathlib import Path
out = Path(sys.argv[1])
def finish(signum, frame):
    time.sleep(1)  # a clean-up that takes a while: the wrapper must wait for it
    out.write_text(signal.Signals(signum).name)
    sys.exit(7)
signal.signal(signal.SIGINT, finish)
signal.signal(signal.SIGTERM, finish)
out.write_text("ready")
time.sleep(60)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_lab_exec_hands_signals_to_the_job_and_waits_for_it(
    private_ns: str, tmp_path: Path, sig: signal.Signals
) -> None:
    """A signal sent to `lab exec` alone (no terminal) reaches the job, whose clean-up runs
    to the end; the wrapper exits with the job's status. It never kills the job."""
    netns.create(private_ns)
    marker = tmp_path / "job"
    code = "import sys; sys.argv[0] = 'pr-test-vm'; from stagingvm.cli.app import main; main()"
    wrapper = subprocess.Popen(
        [sys.executable, "-c", code, "lab", "exec", "--namespace", private_ns, "--",
         sys.executable, "-c", JOB, str(marker)],
        stdin=subprocess.DEVNULL, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not marker.exists():
            time.sleep(0.1)
        assert marker.read_text() == "ready"
        wrapper.send_signal(sig)
        assert wrapper.wait(timeout=30) == 7
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
    assert marker.read_text() == sig.name
