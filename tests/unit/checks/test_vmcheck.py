"""How a check adapts to the guest's accelerator."""

from __future__ import annotations

from stagingvm.checks.vmcheck import EMULATED_CONCURRENCY, tuned
from stagingvm.policy import load_policy


def test_native_guest_runs_the_policy_as_written() -> None:
    policy = load_policy("builtin:ai-worker")
    assert tuned(policy, emulated=False, tcg_factor=6.0) == (policy, 1.0)


def test_emulated_guest_gets_longer_timeouts_and_fewer_probes_at_once() -> None:
    policy = load_policy("builtin:ai-worker")
    assert policy.probes.concurrency > EMULATED_CONCURRENCY
    slow, factor = tuned(policy, emulated=True, tcg_factor=6.0)
    assert factor == 6.0
    assert slow.probes.concurrency == EMULATED_CONCURRENCY
    assert slow.probes.timeout == policy.probes.timeout  # stretched by the factor, not here
    assert (slow.promises, slow.user, slow.sudo) == (policy.promises, policy.user, policy.sudo)


def test_emulated_guest_keeps_a_lower_concurrency_the_policy_asks_for() -> None:
    import dataclasses

    policy = load_policy("builtin:ai-worker")
    one = dataclasses.replace(policy, probes=dataclasses.replace(policy.probes, concurrency=1))
    assert tuned(one, emulated=True, tcg_factor=6.0)[0].probes.concurrency == 1


def test_only_families_narrows_the_battery_but_keeps_controls() -> None:
    from stagingvm.checks import catalog
    from stagingvm.checks.vmcheck import only_families

    policy = load_policy("builtin:ai-worker")
    narrow = only_families(policy, ["secrets", "secrets", "sudo-wildcards"])
    assert narrow.probes.families == ("secrets", "sudo-wildcards")
    chosen = catalog.select(narrow)
    assert {p.family for p in chosen if not p.control} == {"secrets", "sudo-wildcards"}
    assert [p for p in chosen if p.control] == [p for p in catalog.select(policy) if p.control]
    assert narrow.promises == policy.promises


def test_only_families_refuses_an_unknown_family() -> None:
    import pytest

    from stagingvm.checks.vmcheck import only_families
    from stagingvm.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match=r"unknown probe family: sudo-wildcard$") as err:
        only_families(load_policy("builtin:ai-worker"), ["sudo-wildcard"])
    assert "sudo-wildcards" in (err.value.hint or "")
