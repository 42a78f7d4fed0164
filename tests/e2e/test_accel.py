"""The accelerator decision against the lab's real libvirtd and QEMU.

``STAGINGVM_E2E_EXPECT_ACCEL`` (``kvm`` or ``qemu``) states what this host must give; on the
project's build machines KVM exists but does not run guest code, so it is ``qemu`` there.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import libvirt

from stagingvm.virt.accel.accel import load_cached_verdict, probe_domain_type, resolve_accel
from tests.e2e.harness import Run


def test_probe_sees_the_marker_under_software_emulation(conn: libvirt.virConnect, run: Run) -> None:
    # The detection path works: the same payload under TCG prints its marker.
    # The probe returns as soon as the marker shows: a long time-out costs nothing when it works,
    # and a loaded 2-core host (other VMs under TCG) can take more than 30 s to print it.
    result = probe_domain_type(conn, "qemu", run.settings.data_dir / "accel-tcg", timeout=180)
    assert result.works, result.detail
    assert not [d for d in conn.listAllDomains() if d.name().startswith("stagingvm-accel-probe")]


def test_auto_decides_and_says_why(conn: libvirt.virConnect, run: Run) -> None:
    settings = replace(run.settings, data_dir=run.settings.data_dir / "accel-auto")
    decision = resolve_accel(settings, conn)
    assert decision.domain_type in ("kvm", "qemu")
    if decision.domain_type == "qemu":
        assert decision.warning is not None and "KVM is not usable" in decision.warning
        assert decision.timeout_factor == settings.timeouts.tcg_factor
    else:
        assert decision.warning is None and decision.timeout_factor == 1.0
    expected = os.environ.get("STAGINGVM_E2E_EXPECT_ACCEL")
    if expected:
        assert decision.domain_type == expected, decision.reason
    verdict = load_cached_verdict(settings)
    assert verdict is not None and verdict.works == (decision.domain_type == "kvm")
    # The second decision comes from the cache and agrees.
    again = resolve_accel(settings, conn)
    assert again.domain_type == decision.domain_type
    assert "cached" in again.reason
    assert Path(settings.data_dir / "accel" / "kvm-verdict.json").is_file()
