"""Validation of VM and guest user names, before anything is created from them."""

from __future__ import annotations

import re

from stagingvm.errors import InvalidInputError

# One DNS label, lower case, no leading hyphen: safe in paths, XML, libvirt and hostnames.
NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
# Users on the guest: POSIX-ish portable names (what useradd accepts by default).
USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


class ValidName(str):
    """A name ``validate_name`` accepted: handing it on does not check it again."""

    __slots__ = ()


def validate_name(name: str, *, what: str = "VM name") -> ValidName:
    """*name* as a ``ValidName`` if it is a valid name, else raise InvalidInputError.

    The library checks each name once, where it enters (the Manager's verbs, the CI run);
    lower layers that make paths of a name (``locks.vm_lock``) call this too, which costs
    nothing for a ``ValidName`` and still refuses a plain string that is not one.
    """
    if isinstance(name, ValidName):
        return name
    if not isinstance(name, str) or NAME_RE.fullmatch(name) is None:
        shown = repr(name) if len(str(name)) <= 80 else repr(str(name)[:80]) + "..."
        raise InvalidInputError(
            f"invalid {what} {shown}",
            hint="use 1-63 characters: lower-case letters, digits and '-', "
            "starting with a letter or digit",
        )
    return ValidName(name)


def validate_user(name: str) -> str:
    """Return guest user *name* unchanged if it is a portable user name, else raise."""
    if not isinstance(name, str) or USER_RE.fullmatch(name) is None:
        raise InvalidInputError(
            f"invalid user name {name!r}",
            hint="use 1-32 characters: lower-case letters, digits, '_' and '-', "
            "starting with a letter or '_'",
        )
    return name
