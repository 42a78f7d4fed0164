"""Verdicts: probe and promise results from evidence and observations (pure functions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class RootFacts:
    """What root established about the probes, the only ground for two verdicts.

    ``na_reasons``: probe id -> why the probe's route does not exist here (root's own look,
    ``stagingvm.checks.applicability``, or target discovery); a probe that says "not
    applicable" without an entry here is not believed. ``ran``: the probe ids whose script
    root saw start (the witness each script's first line leaves); None when root did not
    look (an interrupted run), so nothing is concluded from it. ``absent``: probe id -> why
    its premise is missing on this target, from root's discovery
    (``stagingvm.checks.target.plan.not_applicable``): such a probe is not run at all and is
    not applicable whatever the user's side says (a control never is; an effect an oracle
    saw still wins).
    """

    na_reasons: Mapping[str, str] = field(default_factory=dict)
    absent: Mapping[str, str] = field(default_factory=dict)
    ran: frozenset[str] | None = None


NO_FACTS = RootFacts()


def _unjudged(
    probe: Probe, ev: Evidence, obs: Observations | None, facts: RootFacts, timeout: float
) -> tuple[Outcome, str] | None:
    """Why *probe* reached no judged end (outcome, text), or None when it did."""
    if not probe.control and probe.id in facts.absent:
        return Outcome.NOT_APPLICABLE, facts.absent[probe.id]
    claimed = oracles.not_applicable_reason(ev)
    blocked = oracles.interference(ev)
    if ev.transport_error is not None:
        return Outcome.ERROR, f"could not run: {ev.transport_error}"
    if ev.timed_out or (ev.exit_status in (124, 137) and ev.duration >= timeout - 0.5):
        return Outcome.ERROR, f"timed out after {ev.duration:.0f} s (no effect seen)"
    if facts.ran is not None and probe.id not in facts.ran:
        return Outcome.ERROR, (
            "root saw no sign that the script ran (its first line leaves a witness): "
            "the user's side answered without running it"
        )
    if claimed is not None:
        if probe.control:
            return Outcome.ERROR, f"a control cannot be not applicable (it said: {claimed})"
        root_says = facts.na_reasons.get(probe.id)
        if root_says is None:
            return Outcome.ERROR, (
                f"the probe said it does not apply ({claimed}), but root found the route "
                "present: not believed"
            )
        return Outcome.NOT_APPLICABLE, root_says
    if blocked is not None:
        return Outcome.ERROR, blocked
    if obs is None:
        return Outcome.ERROR, "root could not observe the guest afterwards"
    return None


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
    facts: RootFacts = NO_FACTS,
) -> ProbeResult:
    """One probe's result; "not applicable" and "held" only on root's ground (*facts*)."""
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
    unjudged = _unjudged(probe, ev, obs, facts, timeout)
    if unjudged is not None:
        result.outcome, result.observed = unjudged
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
