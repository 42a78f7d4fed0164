"""stagingvm.datadir and the locks on it: no symlink below the data dir is followed, deletion
stays inside, and a shared (setgid, group-writable) data dir gives group-shared dirs."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from stagingvm import datadir, locks
from stagingvm.errors import ConfigError


def test_lock_file_symlink_is_not_followed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "locks").mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (data / "locks" / "host.lock").symlink_to(victim)
    with pytest.raises(ConfigError, match="symlink"), locks.host_lock(data / "locks"):
        pass
    assert victim.read_text() == "precious\n"


def test_symlinked_locks_dir_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (data / "locks").symlink_to(elsewhere)
    with pytest.raises(ConfigError, match="symlink"), locks.vm_lock(data / "locks", "a"):
        pass
    assert list(elsewhere.iterdir()) == []


def test_fifo_lock_file_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "locks").mkdir(parents=True)
    os.mkfifo(data / "locks" / "host.lock")
    with pytest.raises(ConfigError, match="regular file"), locks.host_lock(data / "locks"):
        pass


def test_the_data_dir_itself_may_be_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    with locks.host_lock(tmp_path / "link" / "locks"):
        assert (real / "locks" / "host.lock").is_file()


def test_remove_tree_refuses_a_symlinked_parent(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    outside = tmp_path / "outside"
    (outside / "pr-1").mkdir(parents=True)
    (outside / "pr-1" / "keep").write_text("x")
    (data / "vms").symlink_to(outside)
    with pytest.raises(ConfigError, match="symlink"):
        datadir.remove_tree(data, data / "vms" / "pr-1")
    assert (outside / "pr-1" / "keep").exists()


def test_remove_tree_removes_a_link_not_its_target(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "vms").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    (data / "vms" / "pr-1").symlink_to(outside)
    assert datadir.remove_tree(data, data / "vms" / "pr-1")
    assert (outside / "keep").exists()
    assert not (data / "vms" / "pr-1").exists()


def test_remove_tree_only_below_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for path in (data, tmp_path, data / ".." / "x", Path("/etc")):
        with pytest.raises(ConfigError, match="not inside"):
            datadir.remove_tree(data, path)
    assert datadir.remove_tree(data, data / "missing" / "x") is False


def test_shared_data_dir_gives_group_dirs_and_keeps_private_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, 0o2770)
    assert datadir.is_shared(data)
    made = datadir.ensure_dir(data, data / "vms" / "a")
    assert stat.S_IMODE(made.stat().st_mode) == 0o2770
    fd = datadir.open_file(data, data / "locks" / "x.lock", os.O_RDWR | os.O_CREAT, 0o644)
    os.close(fd)
    assert stat.S_IMODE((data / "locks" / "x.lock").stat().st_mode) == 0o664
    fd = datadir.open_file(data, data / "keys" / "k", os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    assert stat.S_IMODE((data / "keys" / "k").stat().st_mode) == 0o600
    assert datadir.user_keys_dir(data) == data / "keys" / "users" / str(os.getuid())


def test_unshared_data_dir_keeps_the_plain_layout(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    assert not datadir.is_shared(data)
    assert datadir.user_keys_dir(data) == data / "keys"
    made = datadir.ensure_dir(data, data / "vms" / "a")
    assert stat.S_IMODE(made.stat().st_mode) == 0o755
