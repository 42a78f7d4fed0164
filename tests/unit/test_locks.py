"""flock-based host and VM locks: exclusion between threads and processes, time-outs."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stagingvm import locks
from stagingvm.errors import ConfigError, ConflictError, InvalidInputError


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


def test_image_lock_one_try_raises_the_callers_error(tmp_path: Path) -> None:
    busy = ConflictError("image 'x' is being built right now")
    with locks.image_lock(tmp_path, "x"):
        with (
            pytest.raises(ConflictError) as err,
            locks.image_lock(tmp_path, "x", timeout=0, busy=busy),
        ):
            pass
        assert err.value is busy
    with locks.image_lock(tmp_path, "x", timeout=0, busy=busy):  # free again: no error
        pass
    with pytest.raises(InvalidInputError):
        locks.image_lock(tmp_path, "../x")


def test_waiting_context_only_while_busy_and_no_timeout_waits(tmp_path: Path) -> None:
    entered: list[str] = []

    @contextlib.contextmanager
    def phase() -> Iterator[None]:
        entered.append("waiting")
        yield

    with locks.image_lock(tmp_path, "free", waiting=phase):
        pass
    assert entered == []
    held = threading.Event()
    holder = threading.Thread(target=_hold, args=(tmp_path / "image-busy.lock", held))
    holder.start()
    assert held.wait(10)
    started = time.monotonic()
    with locks.image_lock(tmp_path, "busy", waiting=phase):  # timeout None: as long as it takes
        waited = time.monotonic() - started
    holder.join()
    assert entered == ["waiting"] and waited > 0


def test_file_lock_mode_and_no_symlinks(tmp_path: Path) -> None:
    path = tmp_path / ".known_hosts.lock"
    with locks.file_lock(path, what="known_hosts", mode=0o600):
        pass
    assert path.stat().st_mode & 0o777 == 0o600
    link = tmp_path / "link.lock"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ConfigError), locks.file_lock(link, what="a link"):
        pass


def _hold(path: Path, held: threading.Event) -> None:
    with locks.file_lock(path, what="holder"):
        held.set()
        time.sleep(0.5)


def test_a_valid_name_is_checked_once() -> None:
    from stagingvm.names import ValidName, validate_name

    name = validate_name("web")
    assert isinstance(name, ValidName) and name == "web"
    assert validate_name(name) is name  # handed on: not checked again
    with pytest.raises(InvalidInputError):
        validate_name("../web")
