"""Pinned SSH host keys, one known_hosts file per VM, kept by stagingvm.

The rule (trust on first use, but only when it is safe):

* When the VM's image came from stagingvm's own builder, the host keys the builder recorded
  are pinned (:meth:`KnownHosts.pin`) before the VM first runs, and only they are accepted.
* Otherwise, when a VM was *just started by us* (the caller says so with
  ``record_first_key=True``) and its file holds no key for that address yet, the first key
  the guest offers is recorded.
* In every other case a key that is not in the file is refused with :class:`HostKeyError`,
  and a key that differs from the pinned one is refused too, showing both fingerprints.

Host-key checking is never turned off (no AutoAddPolicy, no WarningPolicy): an address on the
NAT network can be taken over by another guest, and the restriction checks must know they are
talking to the VM they started.

The file uses the OpenSSH known_hosts syntax (``HOST KEYTYPE BASE64``, HOST being the IP for
port 22 and ``[IP]:PORT`` otherwise), so ``ssh -o UserKnownHostsFile=FILE`` can use it too.
It is written atomically (temporary file + rename) with mode 0600, under a lock file so two
processes recording at once cannot lose an entry.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from stagingvm import locks
from stagingvm.errors import HostKeyError, InvalidInputError
from stagingvm.names import NAME_RE
from stagingvm.ssh.files import ensure_private_dir, write_atomic
from stagingvm.ssh.keys import check_key_permissions

if TYPE_CHECKING:
    import paramiko


@dataclass(frozen=True)
class HostKey:
    """One known_hosts line: the host id, the key type and the key blob (base64)."""

    host: str
    keytype: str
    blob: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(base64.b64decode(self.blob))

    def line(self) -> str:
        return f"{self.host} {self.keytype} {self.blob}"


def host_id(host: str, port: int = 22) -> str:
    """The known_hosts name of *host*:*port*, as OpenSSH (and paramiko) spell it."""
    return host if port == 22 else f"[{host}]:{port}"


def fingerprint(blob: bytes) -> str:
    """OpenSSH's ``SHA256:...`` fingerprint of a public key blob."""
    digest = hashlib.sha256(blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


class KnownHosts:
    """The known_hosts file of one VM (``<data_dir>/vms/NAME/known_hosts``)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def entries(self) -> list[HostKey]:
        """Every well-formed entry; comments, blank and malformed lines are skipped."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        result = []
        for raw in text.splitlines():
            fields = raw.split()
            if len(fields) < 3 or fields[0].startswith("#"):
                continue
            try:
                base64.b64decode(fields[2], validate=True)
            except (binascii.Error, ValueError):
                continue
            for name in fields[0].split(","):
                result.append(HostKey(name, fields[1], fields[2]))
        return result

    def keys_for(self, host: str, port: int = 22) -> list[HostKey]:
        wanted = host_id(host, port)
        return [entry for entry in self.entries() if entry.host == wanted]

    def record(self, host: str, port: int, keytype: str, blob: str) -> None:
        """Pin *keytype*/*blob* for host:port, unless a key is pinned already.

        Re-checks under the lock: if another process pinned a different key meanwhile, this
        is the same situation as a changed key and raises :class:`HostKeyError`.
        """
        offered = HostKey(host_id(host, port), keytype, blob)
        with self._locked():
            pinned = self.keys_for(host, port)
            if pinned:
                if offered not in pinned:
                    raise changed_key_error(self.path, offered, pinned[0])
                return
            lines = [entry.line() for entry in self.entries()] + [offered.line()]
            self._write(lines)

    def pin(self, host: str, port: int, keys: Iterable[tuple[str, str]]) -> None:
        """Pin exactly *keys* (keytype, base64 blob) for host:port, replacing what was pinned
        for it: for a VM about to run for the first time, whose image's keys are known."""
        wanted = host_id(host, port)
        with self._locked():
            kept = [entry.line() for entry in self.entries() if entry.host != wanted]
            self._write(kept + [HostKey(wanted, kind, blob).line() for kind, blob in keys])

    def forget(self, host: str, port: int = 22) -> int:
        """Remove the keys of host:port (for a VM that was rebuilt); returns how many."""
        wanted = host_id(host, port)
        with self._locked():
            entries = self.entries()
            kept = [entry.line() for entry in entries if entry.host != wanted]
            if len(kept) != len(entries):
                self._write(kept)
            return len(entries) - len(kept)

    def _locked(self) -> locks.AbstractLock:
        ensure_private_dir(self.path.parent)
        lock_path = self.path.with_name(f".{self.path.name}.lock")
        what = f"the known_hosts file {self.path}"
        return locks.file_lock(lock_path, what=what, timeout=None, mode=0o600)

    def _write(self, lines: list[str]) -> None:
        write_atomic(self.path, "".join(line + "\n" for line in lines).encode(), mode=0o600)


def parse_public_key(text: str) -> tuple[str, str]:
    """(keytype, base64 blob) of an OpenSSH public key ``KEYTYPE BASE64 [COMMENT]``.

    Raises ValueError unless the blob is valid base64 whose own key type (the first field of
    the SSH wire format) is KEYTYPE: a garbled key must not be pinned as if it were one.
    """
    fields = text.split()
    if len(fields) < 2:
        raise ValueError(f"not an SSH public key: {text[:60]!r}")
    keytype, blob = fields[:2]
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"SSH public key of type {keytype[:40]!r} is not valid base64") from None
    size = int.from_bytes(raw[:4], "big")
    if len(raw) < 4 + size or raw[4 : 4 + size] != keytype.encode():
        raise ValueError(f"SSH public key blob does not hold a key of type {keytype[:40]!r}")
    return keytype, blob


def _rebuild_hint(path: Path) -> str:
    # <data_dir>/vms/NAME/known_hosts: name the VM in the hint when the layout says which.
    vm = path.parent.name if NAME_RE.fullmatch(path.parent.name) else "NAME"
    return f"`pr-test-vm rebuild {vm}`"


def changed_key_error(path: Path, offered: HostKey, pinned: HostKey) -> HostKeyError:
    return HostKeyError(
        f"SSH host key of {offered.host} changed: pinned {pinned.fingerprint} "
        f"({pinned.keytype}), offered {offered.fingerprint} ({offered.keytype}). "
        "Someone may be intercepting the connection, or the VM was recreated.",
        hint=f"if you really recreated the VM, run {_rebuild_hint(path)}: it starts the VM "
        f"afresh and pins its new key (the pinned keys are in {path}); otherwise do not "
        "connect and find out who answers at that address",
    )


def unknown_key_error(path: Path, offered: HostKey) -> HostKeyError:
    return HostKeyError(
        f"SSH host key of {offered.host} ({offered.fingerprint}, {offered.keytype}) is not "
        f"pinned in {path}, and a first key is only trusted right after stagingvm "
        "started the VM",
        hint=f"run {_rebuild_hint(path)} to start it afresh and pin its key",
    )


def offered_key(host: str, port: int, key: paramiko.PKey) -> HostKey:
    return HostKey(host_id(host, port), key.get_name(), key.get_base64())


def load_client_key(path: Path) -> paramiko.PKey:
    """The private key at *path* for paramiko; it must be 0600 (as OpenSSH demands)."""
    import paramiko

    check_key_permissions(path)
    try:
        return paramiko.PKey.from_path(path)
    except (paramiko.SSHException, ValueError, OSError) as exc:
        raise InvalidInputError(f"cannot load SSH key {path}: {exc}") from None


def trust_pinned(client: paramiko.SSHClient, pinned: KnownHosts, host: str, port: int) -> None:
    """Load the keys pinned for host:port into *client*: paramiko then accepts them and
    refuses a different key of the same type (BadHostKeyException, see bad_key_error)."""
    import paramiko

    for entry in pinned.keys_for(host, port):
        blob = base64.b64decode(entry.blob)
        try:
            key = paramiko.PKey.from_type_string(entry.keytype, blob)
        except paramiko.SSHException:  # a key type paramiko cannot use: ignore the line
            continue
        client.get_host_keys().add(entry.host, entry.keytype, key)


def bad_key_error(
    path: Path, host: str, port: int, exc: paramiko.BadHostKeyException
) -> HostKeyError:
    """paramiko's refusal of a key that differs from the pinned one, as stagingvm says it."""
    expected = exc.expected_key
    pinned = HostKey(host_id(host, port), expected.get_name(), expected.get_base64())
    return changed_key_error(path, offered_key(host, port, exc.key), pinned)


def pinning_policy(
    known_hosts: KnownHosts, *, port: int, record_first_key: bool
) -> paramiko.MissingHostKeyPolicy:
    """A paramiko policy for keys that are *not* in the file (paramiko itself refuses a key
    that differs from one we loaded into the client, see ``GuestSSH.connect``)."""
    import paramiko

    class PinFirstKeyPolicy(paramiko.MissingHostKeyPolicy):
        def missing_host_key(
            self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
        ) -> None:
            # paramiko passes the known_hosts name ("[ip]:port"); we want the bare address.
            host = hostname[1:].rsplit("]:", 1)[0] if hostname.startswith("[") else hostname
            offered = offered_key(host, port, key)
            if not record_first_key:
                pinned = known_hosts.keys_for(host, port)
                if pinned:  # pinned since the client was set up, by another process
                    if offered in pinned:
                        return
                    raise changed_key_error(known_hosts.path, offered, pinned[0])
                raise unknown_key_error(known_hosts.path, offered)
            known_hosts.record(host, port, offered.keytype, offered.blob)

    return PinFirstKeyPolicy()
