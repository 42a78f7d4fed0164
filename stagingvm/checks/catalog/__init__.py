"""The whole battery, and the part of it a policy selects (probe families: ``docker.py``,
``host.py``, ``sudo.py``; their shared raw-API script: ``dialstdio.py``)."""

from __future__ import annotations

from stagingvm.checks.catalog import docker as catalog_docker
from stagingvm.checks.catalog import host as catalog_host
from stagingvm.checks.catalog import sudo as catalog_sudo
from stagingvm.checks.model import Probe
from stagingvm.policy.model import Policy


def all_probes() -> list[Probe]:
    """Every probe, non-destructive first, destructive last (the order they run in)."""
    probes = catalog_host.CONTROL_PROBES + catalog_docker.PROBES + catalog_sudo.PROBES
    probes += catalog_host.SECRET_PROBES + catalog_host.GENERAL_PROBES
    probes += catalog_host.DESTRUCTIVE_PROBES
    return probes


def select(policy: Policy) -> list[Probe]:
    """Probes of the policy's families, minus its exclusions; controls always run."""
    chosen = set(policy.probes.families)
    out = []
    for probe in all_probes():
        if probe.id in policy.probes.exclude and not probe.control:
            continue
        if probe.destructive and not policy.probes.destructive:
            continue
        if probe.control or probe.family in chosen:
            out.append(probe)
    return out
