"""Validation of VM and guest user names, before anything is created from them."""

from __future__ import annotations

import re

from stagingvm.errors import InvalidInputError

# One DNS label, lower case, no leading hyphen: safe in paths, XML, libvirt and hostnames.
NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
# Users on the guest: POSIX-ish portable names (what useradd accepts by default).
USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


def validate_name(name: str, *, what: str = "VM name") -> str:
    """Return *name* unchanged if it is a valid name, else raise InvalidInputError."""
    if not isinstance(name, str) or NAME_RE.fullmatch(name) is None:
        shown = repr(name) if len(str(name)) <= 80 else repr(str(name)[:80]) + "..."
        raise InvalidInputError(
            f"invalid {what} {shown}",
            hint="use 1-63 characters: lower-case letters, digits and '-', "
            "starting with a letter or digit",
        )
    return name


def validate_user(name: str) -> str:
    """Return guest user *name* unchanged if it is a portable user name, else raise."""
    if not isinstance(name, str) or USER_RE.fullmatch(name) is None:
        raise InvalidInputError(
            f"invalid user name {name!r}",
            hint="use 1-32 characters: lower-case letters, digits, '_' and '-', "
            "starting with a letter or '_'",
        )
    return name
