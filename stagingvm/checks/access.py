"""How a check reaches the guest: the restricted user's own key, and the two connections.

The restricted user logs in with a key of its own (``<data_dir>/keys/id_ed25519_USER``),
never with root's: its public half reaches the guest at start time as the SMBIOS
credential ``stagingvm.authorized_keys.USER`` (see ``user_credentials``). Root's connection,
used only to set up, observe and tear down the oracles, is a separate one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from stagingvm.errors import CheckInfrastructureError, HostKeyError, StagingVMError

if TYPE_CHECKING:
    from stagingvm.settings import Settings
    from stagingvm.ssh.client import GuestSSH
    from stagingvm.ssh.target import SSHTarget


def user_key_path(settings: Settings, user: str) -> Path:
    from stagingvm.ssh.keys import user_key_path as key_path

    return key_path(settings.keys_dir, user)


def user_credentials(settings: Settings, user: str) -> dict[str, str]:
    """``{credential name: public key}`` to pass to ``Manager.start(credentials=...)``."""
    from stagingvm.ssh.keys import user_credentials as credentials

    return credentials(settings.keys_dir, [user])


@contextmanager
def connect(target: SSHTarget, *, max_sessions: int = 8) -> Iterator[GuestSSH]:
    """One GuestSSH connection; SSH trouble becomes "could not check" (host keys excepted)."""
    from stagingvm.ssh.client import GuestSSH

    try:
        conn = GuestSSH.to(target, max_sessions=max_sessions)
    except HostKeyError:
        raise
    except StagingVMError as exc:
        raise CheckInfrastructureError(
            f"cannot log in to {target.host} as {target.user}: {exc.message}",
            hint=exc.hint or "was the VM started with this user's key credential?",
        ) from exc
    try:
        yield conn
    finally:
        conn.close()
