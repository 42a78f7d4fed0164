"""Turn the JSON documents of the library (``VMInfo.to_json()``, settings) into text for people.

The human output is built from the same document that ``--json`` prints, so the two can
never disagree. ``rich.table`` is imported only here, inside the functions that draw tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stagingvm.cli.output import Output

DASH = "-"


def _get(doc: Mapping[str, Any], *keys: str) -> Any:
    """The first of *keys* present (and not None) in *doc*; ``-`` if none is."""
    for key in keys:
        value = doc.get(key)
        if value is not None and value != "":
            return value
    return DASH


def _memory(doc: Mapping[str, Any]) -> str:
    mib = _get(doc, "memory_mib", "memory")
    return f"{mib} MiB" if mib != DASH else DASH


def duration(seconds: Any) -> str:
    """``185`` -> ``3m05s``: short enough for a table column; ``-`` for no value."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        return DASH
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def age(created_at: Any, now: dt.datetime | None = None) -> str:
    """Time since ``created_at`` (ISO 8601, as in the JSON), e.g. ``3h12m``."""
    if not isinstance(created_at, str):
        return DASH
    try:
        created = dt.datetime.fromisoformat(created_at)
    except ValueError:
        return DASH
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    return duration(((now or dt.datetime.now(dt.UTC)) - created).total_seconds())


def _size(n_bytes: Any) -> str:
    if not isinstance(n_bytes, int):
        return DASH
    size = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return DASH  # not reached


def _disk(disk: Any) -> str:
    if not isinstance(disk, Mapping) or not disk.get("path"):
        return DASH
    return f"{disk['path']} ({_size(disk.get('allocation_bytes'))} allocated)"


def started_message(doc: Mapping[str, Any], *, waited: bool) -> str:
    name = doc.get("name", "?")
    ip = _get(doc, "ip", "address")
    if waited and ip != DASH:
        return f"{name} is up at {ip}; log in with: pr-test-vm ssh {name}"
    return f"{name} is {_get(doc, 'state')}"


LIST_COLUMNS = ("NAME", "STATE", "IP", "VCPUS", "MEMORY", "AGE", "BASE", "SNAPSHOTS")


def list_rows(docs: Sequence[Mapping[str, Any]], now: dt.datetime | None = None) -> list[list[str]]:
    return [
        [
            str(_get(d, "name")),
            str(_get(d, "state")),
            str(_get(d, "ip", "address")),
            str(_get(d, "vcpus")),
            _memory(d),
            age(d.get("created_at"), now),
            str(_get(d, "base", "base_image")),
            ",".join(d.get("snapshots") or ()) or DASH,
        ]
        for d in docs
    ]


def host_label(uri: Any) -> str:
    """The HOST column's short name of a libvirt URI: its host (and port), or for a URI
    without one this machine (``local``) or the test driver's file name."""
    from urllib.parse import urlsplit

    if not isinstance(uri, str) or not uri:
        return DASH
    parts = urlsplit(uri)
    if parts.hostname:
        try:
            port = parts.port
        except ValueError:
            port = None
        return parts.hostname + (f":{port}" if port else "")
    if parts.scheme == "test":
        return parts.path.rstrip("/").rpartition("/")[2] or uri
    return "local"


def print_list(out: Output, docs: Sequence[Mapping[str, Any]], *, hosts: bool = False) -> None:
    # Name, state and address are what `list` is run for: the others go first at 80 columns.
    # With several hosts a HOST column follows STATE; SNAPSHOTS and then HOST may go too.
    columns: Sequence[str] = LIST_COLUMNS
    rows = list_rows(docs)
    if hosts:
        columns = (*LIST_COLUMNS[:2], "HOST", *LIST_COLUMNS[2:])
        labels = [host_label(d.get("host")) for d in docs]
        rows = [[*row[:2], label, *row[2:]] for row, label in zip(rows, labels, strict=True)]
    out.table(
        columns,
        rows,
        right=("VCPUS",),
        droppable=("BASE", "AGE", "MEMORY", "VCPUS", *(("SNAPSHOTS", "HOST") if hosts else ())),
    )


# Known fields of VMInfo.to_json(): label shown and how the value reads for people.
_STATUS_FIELDS: list[tuple[str, str, Any]] = [
    ("name", "name", str),
    ("state", "state", str),
    ("ip", "IP", str),
    ("mac", "MAC", str),
    ("uptime_seconds", "uptime", duration),
    ("vcpus", "vCPUs", str),
    ("memory_mib", "memory", lambda v: f"{v} MiB"),
    ("disk", "disk", _disk),
    ("domain_type", "domain type", str),
    ("base", "base image", str),
    ("base_volume", "base volume", str),
    ("created_at", "created", str),
    ("age_seconds", "age", duration),
    ("pr_ref", "PR ref", str),
    ("label", "label", str),
    ("console_log", "console log", str),
    ("snapshots", "snapshots", lambda v: ", ".join(v) or DASH),
]


def status_lines(doc: Mapping[str, Any]) -> list[str]:
    """``label: value`` lines: known fields first, then whatever else the document holds."""
    known = {key for key, _, _ in _STATUS_FIELDS}
    rows: list[tuple[str, str]] = []
    for key, label, show in _STATUS_FIELDS:
        if key in doc:
            value = doc[key]
            rows.append((label, DASH if value is None or value == "" else show(value)))
    for key in sorted(k for k in doc if k not in known):
        value = doc[key]
        if isinstance(value, Mapping):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(map(str, value))
        rows.append((key, DASH if value is None or value == "" else str(value)))
    width = max((len(label) for label, _ in rows), default=0)
    return [f"{label + ':':<{width + 1}} {value}" for label, value in rows]


def print_config(out: Output, doc: Mapping[str, Any]) -> None:
    rows = []
    for key, entry in doc["settings"].items():
        value = entry["value"]
        source = (
            entry["source"] if entry["detail"] is None else f"{entry['source']} {entry['detail']}"
        )
        rows.append([key, "(unset)" if value is None else str(value), source])
    out.table(("KEY", "VALUE", "SOURCE"), rows)
