"""Validation of VM names, before anything is created from them."""

from __future__ import annotations

import re

from stagingvm.errors import InvalidInputError

# One DNS label, lower case, no leading hyphen: safe in paths, XML, libvirt and hostnames.
NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


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
