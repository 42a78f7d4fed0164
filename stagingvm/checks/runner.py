"""Run one restriction check on a booted guest.

Order: root sets up the oracles; the user's identity, groups and ``sudo -n -l`` are judged;
"allow" promises run one after another (restart changes state); the non-destructive probes
and "deny" promises run concurrently over the user's connection; the destructive probes run
last, one at a time, each on an object made for it; root collects what happened; every
result is judged; root tears down, whatever happened before.

Results are stored as they arrive, so a probe that hangs costs only its own verdict
("error: timed out"); an infrastructure failure is recorded in the report, which the caller
always gets back.
"""

from __future__ import annotations

import math
import shlex
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from stagingvm.checks import (
    accounts,
    applicability,
    catalog,
    fixtures,
    judge,
    verdict,
    witness,
)
from stagingvm.checks.fanout import SLACK, fan_out
from stagingvm.checks.fixtures import RunFacts
from stagingvm.checks.model import CheckReport, Evidence, Probe, PromiseResult
from stagingvm.checks.oracles import Observations
from stagingvm.checks.preamble import ROOTMARK_DIR, preamble, wrap
from stagingvm.checks.target import plan
from stagingvm.checks.target.facts import TargetFacts
from stagingvm.checks.target.run import discover
from stagingvm.checks.transport import Shell, run_evidence
from stagingvm.policy.model import Policy, Promise
from stagingvm.progress import NULL_PROGRESS, Progress

ROOT_TIMEOUT = 600.0

_DKMODE = (
    "if docker version >/dev/null 2>&1; then echo direct; "
    'elif sudo -n "$SD" version >/dev/null 2>&1; then echo sudo; else echo none; fi'
)


class _Session:
    def __init__(
        self,
        policy: Policy,
        root: Shell,
        user: Shell,
        run: RunFacts,
        progress: Progress,
        on_result: Callable[[str, Evidence], None] | None,
        timeout_factor: float,
    ) -> None:
        self.policy = policy
        self.root = root
        self.user = user
        self.run = run
        self.progress = progress
        self.on_result = on_result
        self.timeout = policy.probes.timeout * timeout_factor
        self.factor = timeout_factor
        self.root_env = fixtures.root_env(policy, run)
        self.target: TargetFacts | None = None
        self.client = ""  # the real client discovery found (root runs it, never a wrapper)
        self.target_values: dict[str, str] = {}
        self.premise_absent: dict[str, str] = {}  # probe id -> why (root-side facts only)
        self.dkmode = "none"
        # What ran so far, kept here (not in locals) so an interrupted run can still be judged.
        self.phase = "setup"
        self.probes: list[Probe] = []
        self.deny: list[Promise] = []
        self.evidence: dict[str, Evidence] = {}
        self.deny_ev: dict[tuple[str, str], Evidence] = {}
        self.na_reasons: dict[str, str] = {}  # root's own look: probe id -> why it cannot apply

    def values(self, ident: str) -> dict[str, str]:
        c = self.policy.containers
        return {
            "N": self.run.mark,
            "ID": ident,
            "RM": ROOTMARK_DIR,
            "V": c.victim,
            "S": c.service,
            "O": c.secret_service,
            "IMG": c.image,
            **self.target_values,
            "REG": self.policy.host.registry,
            "DKMODE": self.dkmode,
            "TF": str(max(1, math.ceil(self.factor))),
        }

    def as_user(self, ident: str, body: str, timeout: float | None = None) -> Evidence:
        limit = timeout or self.timeout
        argv = wrap(preamble(self.values(ident)), body, limit)
        ev = run_evidence(self.user, argv, limit + SLACK)
        if self.on_result is not None:
            self.on_result(ident, ev)
        return ev

    def as_root(self, body: str, timeout: float = ROOT_TIMEOUT) -> Evidence:
        limit = timeout * self.factor
        return run_evidence(self.root, fixtures.root_script(self.root_env, body), limit)

    def placeholders(self, ident: str) -> dict[str, str]:
        c = self.policy.containers
        return {
            "user": self.policy.user.name,
            "home": f"/home/{self.policy.user.name}",
            "victim": c.victim,
            "service": c.service,
            "secret_service": c.secret_service,
            "image": c.image,
            "docker": self.target_values.get("SD", ""),
            "rootmark": ROOTMARK_DIR,
            "mark": self.run.mark,
            "id": ident,
            "registry": self.policy.host.registry,
        }

    def command(self, promise: Promise, command: str) -> str:
        raw = self.placeholders(promise.id)
        return command.format(**{k: shlex.quote(v) for k, v in raw.items()})

    def judge_facts(self, ident: str) -> dict[str, str]:
        return {
            **self.placeholders(ident),
            "service_id": self.run.facts.get("service_id", "(unknown)"),
            "service_log": f"STAGINGVM-SVC-LOG-{self.run.service_log}",
        }

    def started_at(self) -> str:
        svc = shlex.quote(self.policy.containers.service)
        ev = self.as_root(f"docker inspect -f '{{{{.State.StartedAt}}}}' {svc}", 60)
        return ev.stdout.strip()


def run_check(
    policy: Policy,
    *,
    root: Shell,
    user: Shell,
    vm: str,
    progress: Progress = NULL_PROGRESS,
    on_result: Callable[[str, Evidence], None] | None = None,
    timeout_factor: float = 1.0,
    teardown: bool = True,
    report: CheckReport | None = None,
) -> CheckReport:
    """Run the whole check; never raises for guest trouble (see ``report.infrastructure``).

    *timeout_factor* stretches every time-out (probes, set-up, collection): pass the
    settings' ``tcg_factor`` when the guest runs under software emulation, where one
    ``docker run`` takes tens of seconds. *teardown* False leaves the oracles in the guest
    (for a VM destroyed right after, or kept as evidence). How long each phase took is
    recorded in ``report.phases``.

    *report*, when given, is filled in place and is also what is returned: a caller that may
    be interrupted (Ctrl-C, a global time-out: ``KeyboardInterrupt``) keeps it. On such an
    interruption the results so far are judged (from their output alone: root's observations
    are never collected) and the report says it was interrupted, before the exception goes on.
    """
    started = time.monotonic()
    if report is None:
        report = CheckReport(
            vm=vm, policy=policy.source, user=policy.user.name, policy_sha256=policy.sha256
        )
    session = _Session(policy, root, user, RunFacts.fresh(), progress, on_result, timeout_factor)
    try:
        _run(session, report)
    except KeyboardInterrupt:
        _judge_interrupted(session, report)
        raise
    finally:
        if teardown:
            with _phase(session, report, "teardown", "tearing down oracles as root"):
                ev = session.as_root(fixtures.TEARDOWN, 300)
                if "TEARDOWN-OK" not in ev.stdout:
                    report.infrastructure.append(
                        f"tear-down failed: {ev.transport_error or ev.excerpt()}"
                    )
        report.duration = time.monotonic() - started
    return report


@contextmanager
def _phase(s: _Session, report: CheckReport, key: str, label: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        with s.progress.phase(label):
            yield
    finally:
        report.phases[key] = round(time.monotonic() - started, 3)


def _discover(s: _Session, report: CheckReport) -> bool:
    """Find the real clients, endpoints, rules and tools before anything else runs."""
    facts = s.target = discover(s.root, s.user, s.policy, factor=s.factor)
    override = s.policy.host.docker
    helper = s.policy.host.helper
    s.target_values = plan.probe_values(facts, override, helper)
    s.premise_absent = plan.not_applicable(facts, override, helper)
    report.target = facts.to_json()
    client = s.client = plan.real_client(facts, override)
    s.root_env = fixtures.root_env(s.policy, s.run, client)
    if not client:
        report.infrastructure.append(
            "discovery found no real docker client in the guest"
            + (f" ({'; '.join(facts.notes)})" if facts.notes else "")
        )
        return False
    return True


def _run(s: _Session, report: CheckReport) -> None:
    s.phase = "discover"
    with _phase(s, report, "discover", "discovering the target (clients, sockets, sudo rules)"):
        if not _discover(s, report):
            return
    s.phase = "setup"
    with _phase(s, report, "setup", "setting up oracles as root"):
        ev = s.as_root(fixtures.SETUP)
        if "SETUP-OK" not in ev.stdout:
            report.infrastructure.append(
                f"set-up as root failed: {ev.transport_error or ev.excerpt(400)}"
            )
            return
        s.run.facts = fixtures.parse_facts(ev.stdout)
        if not _root_look(s, report):
            return
    s.phase = "account"
    with _phase(s, report, "account", "checking the user's groups and sudo rules"):
        if not _account(s, report):
            return
    probes = s.probes = catalog.select(s.policy)
    absent = {p.id for p in probes if p.id in s.premise_absent and not p.control}
    gentle = [p for p in probes if not p.destructive and p.id not in absent]
    harsh = [p for p in probes if p.destructive and p.id not in absent]
    for ident in absent:  # never run: the route does not exist here (root's discovery)
        s.evidence[ident] = Evidence(None, "", "", 0.0)
    s.phase = "allow"
    with _phase(s, report, "allow", "checking promised operations"):
        for promise in s.policy.promises:
            if promise.kind == "allow":
                report.promises.append(_allow(s, promise))
    deny = s.deny = [p for p in s.policy.promises if p.kind == "deny"]
    evidence, deny_ev = s.evidence, s.deny_ev
    s.phase = "probes"
    with _phase(s, report, "probes", f"running {len(gentle)} probes and {len(deny)} refusals"):
        fan_out(
            s.as_user,
            s.command,
            gentle,
            deny,
            evidence,
            deny_ev,
            concurrency=s.policy.probes.concurrency,
            timeout=s.timeout,
        )
    s.phase = "destructive"
    with _phase(s, report, "destructive", f"running {len(harsh)} destructive probes"):
        for probe in harsh:
            evidence[probe.id] = s.as_user(probe.id, probe.script)
    s.phase = "collect"
    with _phase(s, report, "collect", "collecting what the oracles saw"):
        ev = s.as_root(fixtures.COLLECT, 300)
        obs: Observations | None = None
        if "COLLECT-OK" in ev.stdout:
            obs = fixtures.parse_collect(ev.stdout)
            verdict.positive_controls(obs, s.run, report)
        else:
            report.infrastructure.append(
                f"collecting observations failed: {ev.transport_error or ev.excerpt(400)}"
            )
        ran = witness.parse(s.as_root(witness.COLLECT, 120).stdout)
        if ran is None:
            report.infrastructure.append("root could not list which probe scripts started")
    facts = judge.RootFacts(
        na_reasons=s.na_reasons,
        absent=s.premise_absent,
        ran=ran if ran is not None else frozenset(),
    )
    for probe in probes:
        report.probes.append(
            judge.judge_probe(
                probe,
                evidence[probe.id],
                obs,
                s.run,
                timeout=s.timeout,
                setuid_allowed=s.policy.host.setuid_allowed,
                facts=facts,
            )
        )
    for promise in deny:
        attempts = [(s.command(promise, c), deny_ev[(promise.id, c)]) for c in promise.commands]
        report.promises.append(judge.judge_deny(promise, attempts, obs, s.run))
    if obs is not None:
        report.infrastructure.extend(obs.errors)


def _root_look(s: _Session, report: CheckReport) -> bool:
    """Root makes the witness directory and looks which probes cannot apply here."""
    body = witness.SETUP + applicability.script(s.policy.user.name, s.client)
    ev = s.as_root(body, 120)
    found = applicability.parse(ev.stdout)
    if "WITNESS-SETUP-OK" not in ev.stdout or found is None:
        report.infrastructure.append(
            f"root's look at the guest failed: {ev.transport_error or ev.excerpt(400)}"
        )
        return False
    s.na_reasons = found
    return True


def _account(s: _Session, report: CheckReport) -> bool:
    user = s.policy.user
    ev = s.as_user(
        "ctl-identity", 'id -un; id -u; id -Gn; echo "DKMODE=$(' + _DKMODE + ')"', 60 * s.factor
    )
    lines = ev.stdout.splitlines()
    if ev.transport_error or len(lines) < 4:
        report.infrastructure.append(
            f"cannot log in as {user.name}: {ev.transport_error or ev.excerpt()}"
        )
        return False
    if lines[0] != user.name or lines[1] == "0":
        report.infrastructure.append(
            f"the user connection is {lines[0]} (uid {lines[1]}), not {user.name}: "
            "the harness is wired wrong"
        )
        return False
    s.dkmode = lines[3].removeprefix("DKMODE=").strip() or "none"
    problems = accounts.judge_groups(lines[2].split(), user.groups_required, user.groups_forbidden)
    report.promises.append(
        PromiseResult(
            "groups",
            "groups",
            f"{user.name}'s groups",
            not problems,
            "; ".join(problems) or f"groups: {lines[2]}",
            [f"id -Gn: {lines[2]}"],
        )
    )
    ev = s.as_user("sudo-list", "sudo -n -l 2>&1", 60 * s.factor)
    rules = accounts.parse_sudo_list(ev.stdout)
    problems, listed = accounts.judge_sudo(
        rules, s.policy.sudo.allowed, s.policy.sudo.runas, s.target
    )
    report.promises.append(
        PromiseResult(
            "sudo-list",
            "sudo-list",
            "`sudo -n -l` lists only allowed commands",
            not problems,
            f"{len(problems)} rule(s) not allowed"
            if problems
            else f"{len(rules)} rule(s), all allowed",
            problems + listed,
        )
    )
    return True


def _allow(s: _Session, promise: Promise) -> PromiseResult:
    attempts: list[tuple[str, Evidence, bool | None]] = []
    for command in promise.commands:
        before = s.started_at() if promise.judge.oracle == "restarted" else ""
        ev = s.as_user(promise.id, s.command(promise, command))
        fired: bool | None = None
        if promise.judge.oracle == "restarted":
            after = s.started_at()
            fired = bool(after) and after != before
        attempts.append((s.command(promise, command), ev, fired))  # as run, for the report
        result = judge.judge_allow(promise, attempts, s.judge_facts(promise.id))
        if result.kept:
            return result
    return judge.judge_allow(promise, attempts, s.judge_facts(promise.id))


def _judge_interrupted(s: _Session, report: CheckReport) -> None:
    """Judge what ran before an interruption, from the output alone (no observations)."""
    ran = [p for p in s.probes if p.id in s.evidence]
    judged = {r.probe_id for r in report.probes}
    for probe in ran:
        if probe.id not in judged:
            report.probes.append(
                judge.judge_probe(
                    probe,
                    s.evidence[probe.id],
                    None,
                    s.run,
                    timeout=s.timeout,
                    facts=judge.RootFacts(na_reasons=s.na_reasons, absent=s.premise_absent),
                )
            )
    kept = {p.promise_id for p in report.promises}
    for promise in s.deny:
        if promise.id in kept or any((promise.id, c) not in s.deny_ev for c in promise.commands):
            continue
        attempts = [(s.command(promise, c), s.deny_ev[(promise.id, c)]) for c in promise.commands]
        report.promises.append(judge.judge_deny(promise, attempts, None, s.run))
    report.infrastructure.append(
        f"interrupted while {_DOING.get(s.phase, s.phase)}: {len(ran)} of {len(s.probes)} "
        "probes had run; their results are judged from their output alone (root's "
        "observations were not collected)"
    )


_DOING = {
    "discover": "discovering the target",
    "setup": "setting up the oracles",
    "account": "checking the user's account",
    "allow": "checking promised operations",
    "probes": "running probes",
    "destructive": "running destructive probes",
    "collect": "collecting observations",
}
