"""Where a VM's console log goes on a local and on a remote libvirt host."""

from __future__ import annotations

from pathlib import Path

import pytest

from stagingvm.settings import Settings
from stagingvm.virt.connection import is_remote
from stagingvm.vm.host import REMOTE_CONSOLE_DIR, console_log_path


@pytest.mark.parametrize(
    ("uri", "remote"),
    [
        ("qemu:///system", False),
        ("test:///default", False),
        ("qemu+unix:///system?socket=/run/x.sock", False),
        ("qemu+ssh://ci@vmhost/system", True),
        ("qemu+tls://vmhost.example.org/system", True),
        ("qemu+tcp://10.0.0.5:16509/system", True),
    ],
)
def test_is_remote(uri: str, remote: bool) -> None:
    assert is_remote(uri) is remote


def test_console_log_stays_local_for_a_local_libvirtd(tmp_path: Path) -> None:
    local = Settings(data_dir=tmp_path)
    assert console_log_path(local, "pr-1") == tmp_path / "vms" / "pr-1" / "console.log"
    remote = Settings(uri="qemu+ssh://ci@vmhost/system", data_dir=tmp_path)
    assert console_log_path(remote, "pr-1") == REMOTE_CONSOLE_DIR / "stagingvm-pr-1.console.log"
