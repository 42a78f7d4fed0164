"""flock-based host and VM locks: exclusion between threads and processes, time-outs."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from stagingvm import locks
from stagingvm.errors import ConflictError, InvalidInputError


def test_second_holder_times_out_with_busy(tmp_path: Path) -> None:
    with (
        locks.vm_lock(tmp_path, "web", timeout=5),
        pytest.raises(ConflictError, match="VM web is busy") as err,
        locks.vm_lock(tmp_path, "web", timeout=0.3),
    ):
        pass
    assert err.value.hint
    with locks.vm_lock(tmp_path, "web", timeout=0.3):  # released: free again
        pass


def test_different_vms_do_not_block_each_other(tmp_path: Path) -> None:
    with (
        locks.vm_lock(tmp_path, "a", timeout=1),
        locks.vm_lock(tmp_path, "b", timeout=0.2),
        locks.host_lock(tmp_path, timeout=0.2),
    ):
        pass


def test_waiter_gets_the_lock_when_released(tmp_path: Path) -> None:
    held = threading.Event()
    order: list[str] = []

    def holder() -> None:
        with locks.host_lock(tmp_path, timeout=1):
            held.set()
            time.sleep(0.3)
            order.append("holder done")

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait()
    with locks.host_lock(tmp_path, timeout=5):
        order.append("waiter in")
    thread.join()
    assert order == ["holder done", "waiter in"]


def test_while_waiting_can_give_up_early(tmp_path: Path) -> None:
    calls: list[int] = []

    def give_up() -> None:
        calls.append(1)
        if len(calls) == 3:
            raise ConflictError("already exists")

    with (
        locks.vm_lock(tmp_path, "x", timeout=5),
        pytest.raises(ConflictError, match="already exists"),
        locks.vm_lock(tmp_path, "x", timeout=60, while_waiting=give_up),
    ):
        pass
    assert len(calls) == 3


def test_lock_held_by_another_process(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path; from stagingvm import locks\n"
        "with locks.vm_lock(Path(sys.argv[1]), 'p', timeout=5):\n"
        "    print('locked', flush=True); time.sleep(30)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        with pytest.raises(ConflictError), locks.vm_lock(tmp_path, "p", timeout=0.3):
            pass
    finally:
        proc.kill()
        proc.wait()
    with locks.vm_lock(tmp_path, "p", timeout=1):  # a dead holder leaves no stale lock
        pass


def test_vm_lock_validates_the_name(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError):
        locks.vm_lock(tmp_path, "../escape")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_lock_dir_is_a_config_error(tmp_path: Path) -> None:
    from stagingvm.errors import ConfigError

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with (
        pytest.raises(ConfigError, match="cannot open the lock file") as err,
        locks.host_lock(blocker / "locks", timeout=0.1),
    ):
        pass
    assert err.value.hint
