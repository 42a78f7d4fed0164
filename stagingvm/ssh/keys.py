"""stagingvm's own SSH client keys.

stagingvm logs into its VMs with a key of its own (``<data_dir>/keys/id_ed25519``), never with
the user's keys or agent: the public half is handed to the guest at start time through SMBIOS
credentials, so no image needs a baked-in key. Extra users (the restriction checks log in as
``ai-worker``) get a key pair of their own from :func:`make_user_keypair`.

paramiko cannot generate ed25519 keys, so they are made with ``cryptography`` (a dependency of
paramiko) and written in the OpenSSH format that both paramiko and OpenSSH read.

A private key file is created with mode 0600 from its first byte (``os.open`` with the mode,
never chmod after the fact), in a temporary name that is hard-linked into place: two processes
that make the key at the same time end up with the same one, and nobody ever sees half a key.
"""

from __future__ import annotations

import re
import socket
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from stagingvm.errors import InvalidInputError
from stagingvm.names import validate_user
from stagingvm.ssh.files import ensure_private_dir, write_atomic

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.serialization import SSHPrivateKeyTypes

CREDENTIAL_PREFIX = "stagingvm.authorized_keys."
"""A guest user's authorized key arrives as the systemd credential ``PREFIX + USER``."""


@dataclass(frozen=True)
class KeyPair:
    """A private key file and the ``authorized_keys`` line of its public half."""

    private_path: Path
    public_line: str


def ensure_client_key(path: Path) -> str:
    """Make an ed25519 key at *path* if there is none; return its public key line.

    An existing key is loaded, not replaced; it must not be readable by group or others
    (the same rule OpenSSH applies). ``path.pub`` is written next to a key we make, for the
    user's convenience; the public line returned is always derived from the private key.
    """
    path = Path(path)
    created = False
    if not path.exists():
        created = _create_private_key(path)
    line = _public_line(_load_private_key(path), comment=_comment())
    pub = path.with_name(path.name + ".pub")
    if created or not pub.exists():  # never rewrite the .pub of a key the user gave us
        write_atomic(pub, (line + "\n").encode("ascii"), mode=0o644)
    return line


def user_key_path(directory: Path, name: str) -> Path:
    """Where the private key stagingvm uses for guest user *name* lives (made or not)."""
    return Path(directory) / f"id_ed25519_{validate_user(name)}"


def make_user_keypair(directory: Path, name: str) -> KeyPair:
    """The key pair stagingvm uses to log in as guest user *name* (made on first use)."""
    private_path = user_key_path(directory, name)
    return KeyPair(private_path, ensure_client_key(private_path))


def user_credentials(directory: Path, users: Iterable[str]) -> dict[str, str]:
    """``{credential name: public key line}`` giving each guest user its own key."""
    users = [validate_user(u) for u in users]  # all valid before any key is made
    return {
        CREDENTIAL_PREFIX + user: make_user_keypair(directory, user).public_line for user in users
    }


def check_key_permissions(path: Path) -> None:
    """Refuse a private key file that group or others can read or write."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InvalidInputError(f"SSH key {path} does not exist") from None
    if not stat.S_ISREG(st.st_mode):
        raise InvalidInputError(f"SSH key {path} is not a regular file")
    if st.st_mode & 0o077:
        raise InvalidInputError(
            f"SSH key {path} is accessible by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):04o})",
            hint=f"chmod 600 {path}",
        )


def _create_private_key(path: Path) -> bool:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    ensure_private_dir(path.parent)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    # If another process made the key meanwhile, keep theirs.
    return write_atomic(path, pem, mode=0o600, keep_existing=True)


def _load_private_key(path: Path) -> SSHPrivateKeyTypes:
    from cryptography.hazmat.primitives import serialization

    check_key_permissions(path)
    data = path.read_bytes()
    try:
        return serialization.load_ssh_private_key(data, password=None)
    except TypeError:
        raise InvalidInputError(
            f"SSH key {path} is protected by a passphrase",
            hint="stagingvm uses no agent: give it a key without a passphrase "
            "(or delete the file to have one made)",
        ) from None
    except (ValueError, NotImplementedError) as exc:
        raise InvalidInputError(
            f"SSH key {path} is not an OpenSSH private key: {exc}",
            hint="delete the file to have a new key made",
        ) from None


def load_public_line(path: Path) -> str:
    """The public key line of the private key at *path* (which must exist)."""
    return _public_line(_load_private_key(Path(path)), comment=_comment())


def _public_line(key: SSHPrivateKeyTypes, *, comment: str) -> str:
    from cryptography.hazmat.primitives import serialization

    public = key.public_key()
    blob = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{blob.decode('ascii')} {comment}"


def _comment() -> str:
    # Only letters, digits and a few marks: the line travels inside SMBIOS strings.
    host = re.sub(r"[^A-Za-z0-9.-]", "", socket.gethostname()) or "host"
    return f"stagingvm@{host}"
