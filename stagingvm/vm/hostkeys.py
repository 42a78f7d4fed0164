"""Host keys known before first contact: the ones stagingvm's image builder recorded.

The builder (``stagingvm.images``) gives every image fresh SSH host keys and records their
public halves in the image's ``manifest.json`` (``facts.ssh_host_keys``), next to its
``disk.qcow2``. ``import_base`` of such a disk carries them into the base's record; ``start``
pins them in the new VM's known_hosts before the guest runs and then accepts no other key.
Trust on first use stays for bases without recorded keys (a user's own ``build --image``
disk, nix images): it is the weaker rule, since whoever answers first at the VM's address
gets pinned.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stagingvm.errors import InvalidInputError
from stagingvm.ssh.known_hosts import KnownHosts, parse_public_key


def recorded_host_keys(image: Path) -> tuple[str, ...]:
    """The host keys (``KEYTYPE BASE64``) the builder recorded for *image*; () when unknown.

    Only a builder disk counts: *image* must be called ``disk.qcow2`` and the manifest next to
    it must describe a disk of exactly its size (a manifest beside some other file, or beside
    a disk that was replaced, says nothing about it). A manifest that does describe the disk
    but lists a malformed key is refused rather than silently ignored.
    """
    from stagingvm.images.cache import DISK_NAME, MANIFEST_NAME

    image = Path(image)
    if image.name != DISK_NAME:
        return ()
    manifest = _manifest(image.parent / MANIFEST_NAME)
    if manifest is None or manifest.get("disk_bytes") != image.stat().st_size:
        return ()
    facts = manifest.get("facts")
    listed = facts.get("ssh_host_keys") if isinstance(facts, dict) else None
    if not isinstance(listed, list):
        return ()
    keys = []
    for entry in listed:
        try:
            if not isinstance(entry, str):
                raise ValueError(f"not a string: {entry!r:.60}")
            keytype, blob = parse_public_key(entry)
        except ValueError as exc:
            raise InvalidInputError(
                f"{image.parent / MANIFEST_NAME} lists a malformed SSH host key: {exc}",
                hint=f"rebuild the image (`pr-test-vm image build NAME --force`), or import "
                f"{image} from a directory without that manifest",
            ) from None
        keys.append(f"{keytype} {blob}")
    return tuple(keys)


def _manifest(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def seed_known_hosts(known_hosts: Path, host: str, keys: Sequence[str], port: int = 22) -> None:
    """Pin exactly *keys* (``KEYTYPE BASE64`` lines) for host:port in *known_hosts*."""
    KnownHosts(known_hosts).pin(host, port, [parse_public_key(key) for key in keys])
