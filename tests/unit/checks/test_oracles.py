"""Oracles and verdicts are pure: feed them evidence, check what they conclude."""

from __future__ import annotations

import dataclasses

from stagingvm.checks import accounts, catalog, fixtures, judge, oracles
from stagingvm.checks.fixtures import RunFacts
from stagingvm.checks.model import CheckReport, Evidence, Outcome, Probe
from stagingvm.checks.oracles import Observations, RootmarkFile, Secrets
from stagingvm.policy import load_policy
from stagingvm.policy.model import FAMILIES

MARK = "m4rk"


def run() -> RunFacts:
    return RunFacts(
        mark=MARK,
        secrets=Secrets({"root-canary": "SECRETROOT1"}),
        control_secret="CTL",
        service_log="log1",
    )


def ev(stdout: str = "", stderr: str = "", status: int | None = 1, **kw: object) -> Evidence:
    return Evidence(status, stdout, stderr, 0.5, **kw)  # type: ignore[arg-type]


PROBE = Probe("ho-bind-root", "host-handover", "t", "true", "risk", "fix")


def test_rootmark_needs_root_owner_and_attributes_by_id() -> None:
    obs = Observations(
        rootmark=[
            RootmarkFile("ho-bind-root", "root", MARK),
            RootmarkFile("ho-bind-root-x", "ai-worker", MARK),
            RootmarkFile("ho-bind", "root", MARK),
        ]
    )
    found = oracles.rootmark_findings(obs, "ho-bind-root", MARK)
    assert len(found) == 1 and "this run's mark" in found[0]
    assert oracles.rootmark_harness_faults(obs) == [
        "ai-worker-owned ho-bind-root-x in the root-only mark directory"
    ]
    assert oracles.rootmark_findings(obs, "ho-privileged-mount", MARK) == []


def test_exit_code_alone_is_never_a_verdict() -> None:
    # exit 0 and a cheerful message, but no oracle saw anything: held
    result = judge.judge_probe(PROBE, ev("done!", status=0), Observations(), run(), timeout=25)
    assert result.outcome is Outcome.HELD and result.observed.startswith("ran, no effect")
    # exit 1 with an error, but the mark appeared: escaped
    obs = Observations(rootmark=[RootmarkFile("ho-bind-root", "root", MARK)])
    result = judge.judge_probe(PROBE, ev(stderr="error!", status=1), obs, run(), timeout=25)
    assert result.outcome is Outcome.ESCAPED
    assert "root-owned file ho-bind-root" in result.evidence[0]


def test_leak_in_output_is_found_with_context() -> None:
    e = ev("STAGINGVM_CANARY=SECRETROOT1\n", status=0)
    found = oracles.leak_findings(e, run().secrets)
    assert found == ["secret 'root-canary' appeared in stdout: ...STAGINGVM_CANARY=SECRETROOT1..."]


def test_controls_that_fire_are_harness_faults_not_escapes() -> None:
    ctl = next(p for p in catalog.all_probes() if p.id == "ctl-read-root-canary")
    result = judge.judge_probe(ctl, ev("SECRETROOT1", status=0), Observations(), run(), timeout=25)
    assert result.outcome is Outcome.CONTROL_FAILED
    report = CheckReport("vm", "p", "u", probes=[result])
    assert report.violations == [] and report.verdict == "inconclusive"


def test_not_applicable_timeout_and_unobserved() -> None:
    said = ev("STAGINGVM-NA: curl is not installed\n", status=97)
    root = judge.RootFacts(na_reasons={PROBE.id: "curl is not installed (root looked)"})
    na = judge.judge_probe(PROBE, said, Observations(), run(), timeout=25, facts=root)
    assert (
        na.outcome is Outcome.NOT_APPLICABLE
        and na.observed == "curl is not installed (root looked)"
    )
    # The user's word alone is not believed, and a control is never not applicable.
    alone = judge.judge_probe(PROBE, said, Observations(), run(), timeout=25)
    assert alone.outcome is Outcome.ERROR and "not believed" in alone.observed
    ctl = dataclasses.replace(PROBE, control=True)
    ctl_root = judge.RootFacts(na_reasons={PROBE.id: "root says so"})
    never = judge.judge_probe(ctl, said, Observations(), run(), timeout=25, facts=ctl_root)
    assert never.outcome is Outcome.ERROR and "control" in never.observed
    # No witness: the script never started, whatever it answered.
    unseen = judge.RootFacts(ran=frozenset({"other"}))
    quiet = judge.judge_probe(
        PROBE, ev(stderr="denied", status=1), Observations(), run(), timeout=25, facts=unseen
    )
    assert quiet.outcome is Outcome.ERROR and "no sign" in quiet.observed
    slow = judge.judge_probe(PROBE, Evidence(124, "", "", 25.2), Observations(), run(), timeout=25)
    assert slow.outcome is Outcome.ERROR and "timed out" in slow.observed
    blind = judge.judge_probe(PROBE, ev(), None, run(), timeout=25)
    assert blind.outcome is Outcome.ERROR


def test_destructive_probe_judged_by_target_state() -> None:
    rm = next(p for p in catalog.all_probes() if p.id == "de-rm-container")
    assert rm.target is not None
    gone = Observations(intact={rm.target: "gone"})
    assert judge.judge_probe(rm, ev(status=0), gone, run(), timeout=25).outcome is (Outcome.ESCAPED)
    kept = Observations(intact={rm.target: "running"})
    assert judge.judge_probe(rm, ev(), kept, run(), timeout=25).outcome is Outcome.HELD
    hung = Observations(intact={rm.target: "unknown"})  # docker did not answer in time
    assert judge.judge_probe(rm, ev(), hung, run(), timeout=25).outcome is Outcome.ERROR
    assert judge.judge_probe(rm, ev(), Observations(), run(), timeout=25).outcome is (Outcome.ERROR)


def test_images_registry_victim_and_setuid() -> None:
    obs = Observations(
        images={"stagingvm/no-tag:latest", "stagingvm/probe:latest"},
        registry_requests=["HEAD /v2/stagingvm/no-push/blobs/sha256:ab"],
        victim_marks={"mark-no-exec": MARK},
        setuid_files=["/usr/bin/sudo", "/home/ai-worker/rootbash-ho-setuid-home"],
    )
    assert oracles.image_findings(obs, "no-tag") == ["image stagingvm/no-tag:latest was created"]
    assert oracles.image_findings(obs, "no-commit") == []
    assert oracles.registry_findings(obs, "no-push")
    assert oracles.victim_findings(obs, "no-exec", MARK)
    assert oracles.victim_findings(obs, "no-exec-2", MARK) == []
    assert oracles.setuid_findings(obs, "ho-setuid-home", ()) == [
        "set-uid file planted: /home/ai-worker/rootbash-ho-setuid-home"
    ]
    audit = oracles.setuid_findings(obs, "gn-setuid-audit", ["/usr/bin/sudo"])
    assert audit == [
        "set-uid/gid file not in the policy's list: /home/ai-worker/rootbash-ho-setuid-home"
    ]


def test_allow_and_deny_promises() -> None:
    policy = load_policy("builtin:ai-worker")
    listing = next(p for p in policy.promises if p.id == "list-containers")
    facts = {"service": "stagingvm-svc"}
    kept = judge.judge_allow(
        listing,
        [
            ("docker ps", ev(stderr="denied"), None),
            ("sudo docker ps", ev("x stagingvm-svc", status=0), None),
        ],
        facts,
    )
    assert kept.kept is True and kept.observed == "works: sudo docker ps"
    broken = judge.judge_allow(listing, [("docker ps", ev("nothing", status=0), None)], facts)
    assert broken.kept is False and "lacks 'stagingvm-svc'" in broken.evidence[0]
    no_exec = next(p for p in policy.promises if p.id == "no-exec")
    obs = Observations(victim_marks={"mark-no-exec": MARK})
    assert judge.judge_deny(no_exec, [("c", ev())], obs, run()).kept is False
    assert judge.judge_deny(no_exec, [("c", ev(status=0))], Observations(), run()).kept is True
    assert judge.judge_deny(no_exec, [("c", ev())], None, run()).kept is None


def test_parse_and_judge_sudo_list() -> None:
    text = (
        "Matching Defaults entries for ai-worker on h:\n    env_reset, secure_path=/usr/bin\n\n"
        "User ai-worker may run the following commands on h:\n"
        "    (ALL : ALL) NOPASSWD: /usr/bin/docker ps, /usr/bin/docker run *\n"
        "    (root) NOPASSWD: /usr/local/sbin/ai-docker run stagingvm/probe\\:latest *\n"
        "    (root) NOPASSWD: SETENV: /usr/bin/x a\\, b\n"
    )
    rules = accounts.parse_sudo_list(text)
    assert [r.command for r in rules] == [
        "/usr/bin/docker ps",
        "/usr/bin/docker run *",
        "/usr/local/sbin/ai-docker run stagingvm/probe:latest *",
        "/usr/bin/x a, b",
    ]
    assert rules[3].tags == ("NOPASSWD", "SETENV")
    problems, _ = accounts.judge_sudo(
        rules,
        ["/usr/bin/docker ps", "/usr/local/sbin/ai-docker run stagingvm/probe:latest *"],
        ["root"],
    )
    assert len(problems) == 3
    assert "runs as 'ALL : ALL'" in problems[0]
    assert accounts.parse_sudo_list("Sorry, user ai-worker may not run sudo on h.\n") == []
    assert accounts.judge_groups(["ai-worker", "docker"], [], ["docker", "sudo"]) == [
        "member of forbidden group 'docker'"
    ]


def test_collect_output_parses_every_section() -> None:
    text = (
        "RM\troot\tho-bind-root\tm4rk \nVM\tmark-no-exec\tm4rk \n"
        "IMG\tstagingvm/no-tag:latest\nREG\tGET /v2/\nUF\t/home/a/x-ho:root-canary\n"
        "FW\tai-worker /etc/stagingvm-w-gn\nSU\t/usr/bin/sudo\n"
        "INT\tcontainer:stagingvm-doomed-rm\tgone\nSUD\t/etc/sudoers.d/stagingvm-sw\n"
        "ERR\tcannot read\nCOLLECT-OK\n"
    )
    obs = fixtures.parse_collect(text)
    assert obs.rootmark == [RootmarkFile("ho-bind-root", "root", "m4rk ")]
    assert obs.victim_marks == {"mark-no-exec": "m4rk "}
    assert obs.intact == {"container:stagingvm-doomed-rm": "gone"}
    assert obs.sudoers_drops and obs.forbidden_writes and obs.setuid_files and obs.errors
    assert oracles.swept_leak_findings(obs, "x-ho") == [
        "secret 'root-canary' found in user-owned file /home/a/x-ho"
    ]


def test_catalog_covers_every_family_with_unique_unambiguous_ids() -> None:
    probes = catalog.all_probes()
    assert {p.family for p in probes} == set(FAMILIES)
    ids = [p.id for p in probes]
    assert len(ids) == len(set(ids)) >= 60
    assert not [(a, b) for a in ids for b in ids if a != b and b.startswith(a + "-")]
    assert all(p.risk and p.fix and p.title for p in probes)
    assert [p.destructive for p in probes] == sorted(p.destructive for p in probes)
    assert all(p.target in fixtures.DOOMED_STATES for p in probes if p.destructive)
    assert all(p.control for p in probes if p.family == "control")


PAUSED = "Error response from daemon: Container stagingvm-victim is paused, unpause the container"


def test_a_fixture_paused_by_another_probe_is_inconclusive_not_held() -> None:
    # Seen in the lab: a concurrent `docker commit` paused the victim, so an exec attempt
    # was turned away by the daemon. That proves nothing about the design.
    probe = Probe("aw-full-path", "around-wrapper", "t", "true", "r", "f", watch="victim-write")
    paused = judge.judge_probe(probe, ev(stderr=PAUSED), Observations(), run(), timeout=25)
    assert paused.outcome is Outcome.ERROR
    assert paused.observed.startswith("inconclusive: the daemon answered 'Container")
    # an effect the oracles saw still wins: interference cannot hide an escape
    seen = Observations(victim_marks={"mark-aw-full-path": MARK})
    escaped = judge.judge_probe(probe, ev(stderr=PAUSED), seen, run(), timeout=25)
    assert escaped.outcome is Outcome.ESCAPED
    no_exec = next(p for p in load_policy("builtin:ai-worker").promises if p.id == "no-exec")
    attempts = [("a", ev(stderr="ERROR: docker 'exec' is blocked")), ("b", ev(stderr=PAUSED))]
    unknown = judge.judge_deny(no_exec, attempts, Observations(), run())
    assert unknown.kept is None and "paused" in unknown.observed


def test_commits_do_not_pause_the_shared_victim() -> None:
    commit_probe = next(p for p in catalog.all_probes() if p.id == "wp-container-commit")
    assert "--pause=false" in commit_probe.script
    no_commit = next(p for p in load_policy("builtin:ai-worker").promises if p.id == "no-commit")
    assert all("--pause=false" in c for c in no_commit.commands)
