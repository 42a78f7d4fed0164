"""The fault soak (``benchmarks/soak.py``) at a small count, on the tiny guest in the lab.

One cycle of each fault that kills or breaks something (the CLI killed mid-import and
mid-start, a guest powered off under its VM); after each,
``gc --yes`` must leave nothing of the soak's behind. The plain cycle (start, SSH, stop,
rebuild, destroy) is covered by test_lifecycle.py; ``python -m benchmarks.soak`` runs any
number of random cycles. Opt-in for now (STAGINGVM_E2E_SOAK=1): see the skip reason.
"""

from __future__ import annotations

import os

import libvirt
import pytest

from benchmarks.soak import soak_in
from tests.e2e.harness import Run

FAULTS = ["kill-import", "kill-start", "poweroff"]


@pytest.mark.skipif(
    os.environ.get("STAGINGVM_E2E_SOAK") != "1",
    reason="opt-in (STAGINGVM_E2E_SOAK=1): the start after a killed start hung in libvirtd in "
    "three of three runs on the shared lab libvirtd (docs/lifecycle.md, fault soak)",
)
def test_soak_leaves_nothing_after_gc(run: Run, conn: libvirt.virConnect, tiny_base: str) -> None:
    tally = soak_in(run, conn, FAULTS, seed=9)
    doc = tally.to_json()
    print(doc)  # the figures, with -s
    assert doc["cycles"] == len(FAULTS)
    assert doc["leaks_after_gc"] == {}
    assert tally.failures == []
