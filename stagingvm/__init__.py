"""stagingvm: boot a PR's NixOS configuration in a throwaway libvirt VM and check it.

The library is quiet when imported: it logs through ``logging.getLogger("stagingvm")``
with a ``NullHandler``; only the CLI (``stagingvm.cli``) prints.
"""

from __future__ import annotations

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
