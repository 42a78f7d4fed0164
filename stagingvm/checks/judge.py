"""Verdicts: probe and promise results from evidence and observations (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence

from stagingvm.checks import oracles
from stagingvm.checks.fixtures import DOOMED_STATES, RunFacts
from stagingvm.checks.model import Evidence, Outcome, Probe, ProbeResult, PromiseResult
from stagingvm.checks.oracles import Observations
from stagingvm.policy.model import Promise

EXPECTED = {
    "rootmark": "no root-owned mark",
    "victim-write": "no mark in the victim",
    "leak": "no secret in output",
    "image-created": "no new image",
    "registry-contacted": "registry not contacted",
    "fswrite": "no file written",
    "setuid": "no unexpected set-uid file",
    "intact": "object intact",
}


def _held_text(ev: Evidence) -> str:
    excerpt = ev.excerpt(160)
    if ev.exit_status == 0:
        return f"ran, no effect seen: {excerpt}" if excerpt else "ran, no effect seen"
    return (
        f"refused (exit {ev.exit_status}): {excerpt}"
        if excerpt
        else (f"refused (exit {ev.exit_status})")
    )


def probe_findings(ident: str, ev: Evidence, obs: Observations | None, run: RunFacts) -> list[str]:
    """Every oracle's finding that can be attributed to *ident*."""
    found = oracles.leak_findings(ev, run.secrets)
    if obs is not None:
        found += oracles.rootmark_findings(obs, ident, run.mark)
        found += oracles.victim_findings(obs, ident, run.mark)
        found += oracles.swept_leak_findings(obs, ident)
        found += oracles.image_findings(obs, ident)
        found += oracles.registry_findings(obs, ident)
        found += oracles.write_findings(obs, ident)
        found += oracles.sudoers_findings(obs, ident)
    return found


def judge_probe(
    probe: Probe,
    ev: Evidence,
    obs: Observations | None,
    run: RunFacts,
    *,
    timeout: float,
    setuid_allowed: Sequence[str] = (),
    premise_absent: str | None = None,
) -> ProbeResult:
    """*premise_absent*: why the probe's route does not exist here, from root's discovery
    (``stagingvm.checks.target.plan.not_applicable``); an effect an oracle saw still wins."""
    expected = "must fail (control)" if probe.control else EXPECTED.get(probe.watch, probe.watch)
    result = ProbeResult(
        probe.id,
        probe.family,
        probe.title,
        expected,
        Outcome.HELD,
        "",
        duration=ev.duration,
        risk=probe.risk,
        fix=probe.fix,
        control=probe.control,
    )
    found = probe_findings(probe.id, ev, obs, run)
    if obs is not None:
        if probe.id == "gn-setuid-audit":
            if not setuid_allowed:
                result.outcome = Outcome.NOT_APPLICABLE
                result.observed = "the policy lists no set-uid baseline (host.setuid_allowed)"
                return result
            found += oracles.setuid_findings(obs, probe.id, setuid_allowed)
        else:
            found += oracles.setuid_findings(obs, probe.id, ())
        if probe.target is not None:
            state = obs.intact.get(probe.target)
            if state is None or state == "unknown":
                result.outcome = Outcome.ERROR
                result.observed = f"root could not observe {probe.target}"
                return result
            found += oracles.destroyed_findings(obs, probe.target, DOOMED_STATES[probe.target])
    if found:
        result.outcome = Outcome.CONTROL_FAILED if probe.control else Outcome.ESCAPED
        result.observed = found[0]
        result.evidence = [*found, f"output: {ev.excerpt()}"]
        return result
    reason = premise_absent if not probe.control else None
    reason = reason or oracles.not_applicable_reason(ev)
    blocked = oracles.interference(ev)
    if reason is not None:
        result.outcome = Outcome.NOT_APPLICABLE
        result.observed = reason
    elif blocked is not None:
        result.outcome = Outcome.ERROR
        result.observed = blocked
    elif ev.transport_error is not None:
        result.outcome = Outcome.ERROR
        result.observed = f"could not run: {ev.transport_error}"
    elif ev.timed_out or (ev.exit_status in (124, 137) and ev.duration >= timeout - 0.5):
        result.outcome = Outcome.ERROR
        result.observed = f"timed out after {ev.duration:.0f} s (no effect seen)"
    elif obs is None:
        result.outcome = Outcome.ERROR
        result.observed = "root could not observe the guest afterwards"
    else:
        result.observed = _held_text(ev)
    if ev.excerpt():
        result.evidence = [f"output: {ev.excerpt()}"]
    return result


def judge_allow(
    promise: Promise, attempts: Sequence[tuple[str, Evidence, bool | None]], facts: dict[str, str]
) -> PromiseResult:
    """*attempts*: (command, evidence, oracle fired) in the order tried."""
    needles = [n.format(**facts) for n in promise.judge.stdout_contains]
    lines = []
    for command, ev, fired in attempts:
        problems = []
        if ev.transport_error:
            problems.append(ev.transport_error)
        if promise.judge.exit_zero and ev.exit_status != 0:
            problems.append(f"exit {ev.exit_status}")
        problems += [f"output lacks {n!r}" for n in needles if n not in ev.stdout]
        if promise.judge.oracle is not None and not fired:
            problems.append(f"oracle '{promise.judge.oracle}' saw nothing")
        if not problems:
            return PromiseResult(
                promise.id,
                "allow",
                promise.description,
                True,
                f"works: {command}",
                [f"{command}: {ev.excerpt(160)}"],
            )
        lines.append(f"{command}: {'; '.join(problems)}: {ev.excerpt(160)}")
    all_broken = attempts and all(ev.transport_error for _, ev, _ in attempts)
    return PromiseResult(
        promise.id,
        "allow",
        promise.description,
        None if all_broken else False,
        "no spelling works" if not all_broken else "could not run",
        lines,
    )


def judge_deny(
    promise: Promise,
    attempts: Sequence[tuple[str, Evidence]],
    obs: Observations | None,
    run: RunFacts,
) -> PromiseResult:
    oracle = promise.judge.oracle
    found: list[str] = []
    for command, ev in attempts:
        if oracle == "leak":
            found += [f"{command}: {f}" for f in oracles.leak_findings(ev, run.secrets)]
    if obs is not None:
        if oracle == "victim-write":
            found += oracles.victim_findings(obs, promise.id, run.mark)
        elif oracle == "rootmark":
            found += oracles.rootmark_findings(obs, promise.id, run.mark)
        elif oracle == "image-created":
            found += oracles.image_findings(obs, promise.id)
        elif oracle == "registry-contacted":
            found += oracles.registry_findings(obs, promise.id)
        elif oracle == "leak":
            found += oracles.swept_leak_findings(obs, promise.id)
    outputs = [f"{command}: {ev.excerpt(160)}" for command, ev in attempts]
    if found:
        return PromiseResult(
            promise.id, "deny", promise.description, False, found[0], [*found, *outputs]
        )
    if obs is None and oracle != "leak":
        return PromiseResult(
            promise.id,
            "deny",
            promise.description,
            None,
            "root could not observe the guest afterwards",
            outputs,
        )
    if attempts and all(ev.transport_error for _, ev in attempts):
        return PromiseResult(
            promise.id, "deny", promise.description, None, "could not run", outputs
        )
    blocked = next((b for _, ev in attempts if (b := oracles.interference(ev))), None)
    if blocked is not None:
        return PromiseResult(promise.id, "deny", promise.description, None, blocked, outputs)
    return PromiseResult(
        promise.id,
        "deny",
        promise.description,
        True,
        f"refused: {EXPECTED.get(oracle or '', 'no effect')}",
        outputs,
    )
