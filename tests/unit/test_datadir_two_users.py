"""The NixOS module's shared data dir (``2770 root:GROUP``) used by two users in turn.

Each user runs in a subprocess under its own uid (``setpriv --reuid/--regid``, numeric ids
that need no account), as the CLI would: umask from ``datadir.shared_umask``, locks, a VM
directory with a known_hosts, a base record, its own client key. The second must succeed on
everything the first made, and the keys must stay each user's own (0600, separate dirs).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GROUP = 60990
USERS = (60991, 60992)

SCRIPT = r"""
import os, sys
from pathlib import Path
from stagingvm import datadir, locks
from stagingvm.settings import Settings
from stagingvm.ssh.keys import ensure_client_key
from stagingvm.ssh.known_hosts import KnownHosts
from stagingvm.virt import bases

data = Path(sys.argv[1])
vm = sys.argv[2]
datadir.shared_umask(data)
s = Settings(data_dir=data)
with locks.host_lock(s.locks_dir), locks.vm_lock(s.locks_dir, vm):
    for other in sys.argv[3:]:  # what a destroy of the other user's VM removes
        assert datadir.remove_tree(data, s.vm_dir(other)), other
    datadir.ensure_dir(data, s.vm_dir(vm))
    KnownHosts(s.vm_dir(vm) / "known_hosts").pin("10.0.0.1", 22, [("ssh-ed25519", "AAAA")])
    bases.write_record(data, bases.BaseImage(
        name="shared", volume="base-shared-000000000000.qcow2", path="/x", format="qcow2",
        virtual_size=1, source="/x", source_key=None, imported_at="2026-01-01T00:00:00Z"))
print(ensure_client_key(s.ssh_key_path).split()[1])
print(s.ssh_key_path)
"""


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("two uids need root (setpriv --reuid)")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    top = Path(tempfile.mkdtemp(prefix="stagingvm-2uid-", dir="/var/tmp"))
    top.chmod(0o755)
    data = top / "data"
    data.mkdir()
    os.chown(data, 0, GROUP)
    data.chmod(0o2770)  # what nix/module.nix's tmpfiles rule makes
    yield data
    shutil.rmtree(top)


def as_user(uid: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={uid}",
            f"--groups={GROUP}",
            "--",
            sys.executable,
            "-c",
            SCRIPT,
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env={"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent", "PYTHONPATH": str(REPO)},
    )


def test_two_users_share_the_data_dir(shared_dir: Path) -> None:
    first = as_user(USERS[0], str(shared_dir), "vm-one")
    assert first.returncode == 0, first.stderr
    second = as_user(USERS[1], str(shared_dir), "vm-two", "vm-one")
    assert second.returncode == 0, second.stderr

    for sub in ("locks", "vms", "vms/vm-two", "bases", "keys", "keys/users"):
        mode = (shared_dir / sub).stat()
        assert stat.S_IMODE(mode.st_mode) == 0o2770, sub
        assert mode.st_gid == GROUP, sub
    lock = (shared_dir / "locks" / "host.lock").stat()
    assert stat.S_IMODE(lock.st_mode) == 0o664 and lock.st_gid == GROUP
    assert not (shared_dir / "vms" / "vm-one").exists()  # the second user removed it

    key_one, key_two = first.stdout.split(), second.stdout.split()
    assert key_one[0] != key_two[0]  # each user has a key of their own
    for uid, path in zip(USERS, (key_one[1], key_two[1]), strict=True):
        st = Path(path).stat()
        assert st.st_uid == uid and stat.S_IMODE(st.st_mode) == 0o600
        assert stat.S_IMODE(Path(path).parent.stat().st_mode) == 0o700
    known = (shared_dir / "vms" / "vm-two" / "known_hosts").stat()
    assert known.st_uid == USERS[1] and stat.S_IMODE(known.st_mode) == 0o600
