"""Discovery parsing and sudo rule resolution, on outputs recorded from real lab guests.

``recorded/design-b`` is the Debian-layout design B guest, ``recorded/design-b-nixos`` the
same design with the NixOS file layout (client only in a store path, /run/wrappers/bin/sudo,
PATH from PAM, no secure_path, seed 002's rules as written). Each holds the raw output of
the user's and root's discovery scripts (``user.txt``, ``root.txt``), as
``/work/notes/issue8/draft/run_discovery.py`` saved them from a booted guest.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stagingvm.checks import accounts, judge
from stagingvm.checks.fixtures import RunFacts
from stagingvm.checks.model import Evidence, Outcome
from stagingvm.checks.oracles import Observations
from stagingvm.checks.target import plan, sudorules
from stagingvm.checks.target.facts import TargetFacts
from stagingvm.checks.target.parse import parse_root, parse_user
from stagingvm.policy import load_policy

RECORDED = Path(__file__).parent / "recorded"
LAYOUTS = ("design-b", "design-b-nixos")


def facts_of(layout: str) -> TargetFacts:
    facts = TargetFacts(user="ai-worker")
    parse_user((RECORDED / layout / "user.txt").read_text(), facts)
    parse_root((RECORDED / layout / "root.txt").read_text(), facts)
    return facts


def test_debian_layout_finds_usr_bin_docker_and_the_socket() -> None:
    facts = facts_of("design-b")
    real = facts.real_clients()
    assert [c.path.resolved for c in real] == ["/usr/bin/docker"]
    assert real[0].version.startswith("Docker version 20.10")
    assert "/usr/bin" in facts.real_client_dirs()
    assert "/run/docker.sock" in facts.socket_paths()
    sock = next(e for e in facts.endpoints if e.socket_path == "/run/docker.sock")
    assert (sock.mode, sock.owner, sock.group) == ("660", "root", "docker")
    assert sock.user_may_open is False  # ai-worker is not in the docker group
    assert facts.tool("journalctl") == "/usr/bin/journalctl"
    assert facts.tool("fail2ban-client") == ""
    assert sudorules.secure_path(facts)  # Debian's /etc/sudoers sets one


def test_nixos_layout_finds_the_store_client_behind_the_system_profile() -> None:
    facts = facts_of("design-b-nixos")
    real = facts.real_clients()
    assert len(real) == 1
    assert real[0].path.resolved.startswith("/nix/store/")
    assert real[0].path.resolved.endswith("/bin/docker")
    assert "/run/current-system/sw/bin" in facts.real_client_dirs()
    assert not facts.resolved.get("/usr/bin/docker") or not facts.resolved["/usr/bin/docker"].exists
    assert "/run/wrappers/bin" in facts.ssh_path
    assert facts.tool("sudo") == "/run/wrappers/bin/sudo"
    assert sudorules.secure_path(facts) is None
    values = plan.probe_values(facts)
    assert values["SD"] == "/run/current-system/sw/bin/docker"  # as seed 002's rules spell it
    assert values["SUDO"] == "/run/wrappers/bin/sudo"
    assert "/run/wrappers/bin/sudo iptables -L -n -v" in values["BARE"].splitlines()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_sudo_rules_compare_by_the_file_they_run(layout: str) -> None:
    facts = facts_of(layout)
    policy = load_policy("builtin:ai-worker")
    rules = accounts.parse_sudo_list("\n".join(facts.sudo_lines))
    assert len(rules) >= 20
    ps = next(r for r in rules if r.command.endswith("/docker ps"))
    match = sudorules.match_rule(ps.command, policy.sudo.allowed, facts)
    assert match.allowed == "docker ps"
    assert match.how == "same file"
    assert ps.command in match.evidence() and "docker ps" in match.evidence()
    run = next(r for r in rules if r.command.endswith("/docker run *"))
    assert sudorules.match_rule(run.command, policy.sudo.allowed, facts).allowed is None


def test_builtin_policy_judges_both_layouts_alike() -> None:
    policy = load_policy("builtin:ai-worker")
    verdicts = []
    for layout in LAYOUTS:
        facts = facts_of(layout)
        rules = accounts.parse_sudo_list("\n".join(facts.sudo_lines))
        problems, _ = accounts.judge_sudo(rules, policy.sudo.allowed, ("root",), facts)
        kinds = sorted(
            (r.command.split()[0].rsplit("/", 1)[-1], " ".join(r.command.split()[1:]))
            for r in rules
            if not sudorules.match_rule(r.command, policy.sudo.allowed, facts).allowed
        )
        verdicts.append((bool(problems), len(problems), kinds))
    assert verdicts[0] == verdicts[1]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_not_applicable_comes_from_root_facts(layout: str) -> None:
    facts = facts_of(layout)
    absent = plan.not_applicable(facts)
    assert "fail2ban-client" in absent["ns-fail2ban-actions"]
    assert "ho-compose-file" in absent  # Debian 12's docker.io has no compose plugin
    assert not any(i.startswith("ctl-") for i in absent)
    assert "aw-full-path" not in absent and "sw-run-as-root" not in absent
    if layout == "design-b-nixos":
        assert "ns-sudo-bare-path" not in absent  # its rules run `/run/wrappers/bin/sudo iptables`


def test_a_premise_absent_is_not_applicable_but_an_effect_still_wins() -> None:
    from stagingvm.checks.catalog import all_probes
    from stagingvm.checks.oracles import RootmarkFile

    probe = next(p for p in all_probes() if p.id == "ns-fail2ban-actions")
    run = RunFacts.fresh()
    quiet = Evidence(None, "", "", 0.0)
    facts = judge.RootFacts(absent={probe.id: "fail2ban-client missing"})
    result = judge.judge_probe(probe, quiet, Observations(), run, timeout=25, facts=facts)
    assert result.outcome is Outcome.NOT_APPLICABLE and result.observed == "fail2ban-client missing"
    seen = Observations(rootmark=[RootmarkFile(probe.id, "root", run.mark)])
    result = judge.judge_probe(probe, quiet, seen, run, timeout=25, facts=facts)
    assert result.outcome is Outcome.ESCAPED
    control = next(p for p in all_probes() if p.control)
    ran = Evidence(1, "", "Permission denied", 0.1)
    facts = judge.RootFacts(absent={control.id: "x"})
    result = judge.judge_probe(control, ran, Observations(), run, timeout=25, facts=facts)
    assert result.outcome is Outcome.HELD  # controls are never "not applicable"


def test_hostile_user_output_is_bounded() -> None:
    facts = TargetFacts(user="ai-worker")
    path = ":".join(f"/d{i}" for i in range(500)) + ":relative:/d1"
    noise = "\n".join("SSHPATH\t/evil" for _ in range(10000))
    parse_user(f"SSHPATH\t{path}\nCMDV\t{'y' * 100000}\n{noise}\nDOCKERHOST\tlate\n", facts)
    assert facts.ssh_path == tuple(f"/d{i}" for i in range(64))  # absolute, first 64, first line
    assert len(facts.user_docker) == 512
    assert facts.user_docker_host == ""  # past the line limit
    assert "did not finish" in facts.notes[0]


@pytest.mark.parametrize(("layout", "absent"), [("design-b", False), ("design-b-nixos", True)])
def test_command_p_applies_only_where_the_default_path_has_a_real_client(
    layout: str, absent: bool
) -> None:
    facts = TargetFacts(user="ai-worker")
    parse_user((RECORDED / layout / "user.txt").read_text(), facts)
    parse_root("CONFPATH\t/bin:/usr/bin\n" + (RECORDED / layout / "root.txt").read_text(), facts)
    assert facts.conf_path == ("/bin", "/usr/bin")
    reasons = plan.not_applicable(facts)
    assert ("aw-command-p" in reasons) is absent
    if absent:
        assert "command -p" in reasons["aw-command-p"]
    assert facts.to_json()["path"]["system_default"] == ["/bin", "/usr/bin"]


def test_a_client_that_gives_no_version_is_noted_not_real() -> None:
    facts = TargetFacts(user="ai-worker")
    parse_root(
        "CLIENT\t/run/current-system/sw/bin/docker\tpath:/run/current-system/sw/bin\n"
        "RES\t/run/current-system/sw/bin/docker\t/nix/store/x-docker/bin/docker\t1:2\troot\t555\telf\n"
        "VERSION\t/run/current-system/sw/bin/docker\t\t\t124\n"
        "DISCOVER-ROOT-OK\n",
        facts,
    )
    assert facts.real_clients() == []
    assert facts.notes == [
        "root ran /run/current-system/sw/bin/docker --version: no answer (exit 124, timed out)"
    ]
