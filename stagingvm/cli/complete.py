"""Shell completion of VM and base names, read from the data dir: no libvirt connection.

Typer calls these while completing, before any command runs, so the root callback has not
made a ``CliState``: the data dir comes from ``--data-dir``/``--config`` already typed on the
line, then the environment and config files, as for a real run. Any problem (a bad config
file, an unreadable dir) completes nothing: completion never prints errors into a shell.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from stagingvm.names import NAME_RE


def _data_dir(ctx: Any) -> Path | None:
    root = ctx.find_root() if ctx is not None else None
    params = getattr(root, "params", {}) or {}
    try:
        from stagingvm.config.load import load_settings

        loaded = load_settings(
            env=os.environ,
            flags={"data_dir": (params.get("data_dir"), "--data-dir")},
            config_file=params.get("config"),
        )
    except Exception:  # completion must stay silent: no traceback into the shell
        return None
    return loaded.settings.data_dir


def _names(directory: Path, suffix: str, incomplete: str) -> list[str]:
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    names = []
    for entry in entries:
        if suffix:
            if not entry.endswith(suffix):
                continue
            entry = entry[: -len(suffix)]
        if NAME_RE.fullmatch(entry) and entry.startswith(incomplete):
            names.append(entry)
    return sorted(names)


def vm_names(ctx: Any, incomplete: str) -> list[str]:
    """VMs that have state under ``<data_dir>/vms``."""
    data_dir = _data_dir(ctx)
    return [] if data_dir is None else _names(data_dir / "vms", "", incomplete)


def base_names(ctx: Any, incomplete: str) -> list[str]:
    """Bases recorded under ``<data_dir>/bases`` (``NAME.json``)."""
    data_dir = _data_dir(ctx)
    return [] if data_dir is None else _names(data_dir / "bases", ".json", incomplete)
