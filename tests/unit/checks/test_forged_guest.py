"""A guest whose user side forges every answer must get "could not check" (11), never held.

The whole check (``run_check``) runs against two fake shells: root answers like an honest
root (set-up, applicability, positive controls, witnesses of what really ran), the user's
side answers every probe script with a forgery and never runs it. The honest variant, whose
user side does run each script's first line, is the counter-test: it must come out held.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest

from stagingvm.checks import catalog
from stagingvm.checks.fixtures import DOOMED_STATES
from stagingvm.checks.runner import run_check
from stagingvm.checks.verdict import raise_for_verdict
from stagingvm.errors import CheckInfrastructureError
from stagingvm.policy import load_policy
from tests.unit.checks.test_target import LAYOUTS, RECORDED

# Discovery is answered with what real lab guests printed (see test_target.py).
# What root's discovery on both recorded guests found missing (no helper, no compose, no
# fail2ban): these probes are not applicable on root's word, whatever the user says.
ROOT_FOUND_ABSENT = (
    "ha-inspect-other",
    "ha-run-image-smuggle",
    "ha-run-mount-escape",
    "ho-compose-file",
    "ns-fail2ban-actions",
)


@dataclass
class Result:
    exit_status: int | None
    stdout: bytes
    stderr: bytes = b""


def _var(script: str, name: str) -> str:
    match = re.search(rf"^export {name}=(?:'([^']*)'|(\S*))$", script, re.MULTILINE)
    assert match is not None, name
    return match.group(1) if match.group(1) is not None else match.group(2)


class Root:
    """An honest root: every set-up works, every positive control is seen."""

    def __init__(self, user: User) -> None:
        self.user = user

    def run(self, argv: Sequence[str], *, timeout: float, stdin: bytes | None = None) -> Result:
        script = argv[-1]
        if "echo DISCOVER-ROOT-OK" in script:
            return Result(0, (RECORDED / self.user.layout / "root.txt").read_bytes())
        if "echo SETUP-OK" in script:
            return Result(0, b"FACT\tservice_id\tabc\nSETUP-OK\n")
        if "APPLICABILITY-OK" in script:
            return Result(0, b"WITNESS-SETUP-OK\nAPPLICABILITY-OK\n")
        if "echo COLLECT-OK" in script:
            mark = _var(script, "N")
            lines = [
                f"RM\troot\tctl-oracle-rootmark\t{mark}",
                f"VM\tmark-ctl-oracle-victim\t{mark}",
                "UF\t/home/ai-worker/x:ctl-oracle-sweep",
                "IMG\tstagingvm/ctl-oracle-image:latest",
                "REG\tGET /v2/ctl-oracle-registry/manifests/latest",
                *(f"INT\t{t}\t{s}" for t, s in DOOMED_STATES.items()),
                "COLLECT-OK",
            ]
            return Result(0, ("\n".join(lines) + "\n").encode())
        if "WITNESS-OK" in script:
            ran = "".join(f"RAN\t{i}\n" for i in sorted(self.user.witnessed))
            return Result(0, (ran + "WITNESS-OK\n").encode())
        if "TEARDOWN-OK" in script:
            return Result(0, b"TEARDOWN-OK\n")
        return Result(0, b"2026-01-01T00:00:00Z\n" if "StartedAt" in script else b"")


class User:
    """The restricted user's side: identity and sudo list honest, every script *answer*ed."""

    def __init__(
        self,
        answer: Callable[[str], Result | None],
        *,
        runs_first_line: bool,
        layout: str = "design-b",
    ) -> None:
        self.answer = answer
        self.layout = layout
        self.runs_first_line = runs_first_line
        self.witnessed: set[str] = set()

    def run(self, argv: Sequence[str], *, timeout: float, stdin: bytes | None = None) -> Result:
        script = argv[-1]
        if "echo DISCOVER-USER-OK" in script:
            return Result(0, (RECORDED / self.layout / "user.txt").read_bytes())
        ident = _var(script, "ID")
        if self.runs_first_line:
            self.witnessed.add(ident)
        if ident == "ctl-identity":
            return Result(0, b"ai-worker\n1001\nai-worker\nDKMODE=sudo\n")
        if ident == "sudo-list":
            return Result(0, b"User ai-worker may run the following commands:\n")
        forged = self.answer(ident)
        if forged is None:
            raise TimeoutError("timed out")
        return forged


FORGERIES: dict[str, Callable[[str], Result | None]] = {
    "not-applicable": lambda i: Result(97, b"STAGINGVM-NA: nothing to see here\n"),
    "denied": lambda i: Result(1, b"", b"permission denied\n"),
    "times-out": lambda i: None,
}


def _check(user: User):  # type: ignore[no-untyped-def]
    # The promises are left out: the forger runs them normally (they are judged on their own).
    policy = dataclasses.replace(load_policy("builtin:ai-worker"), promises=())
    return run_check(policy, root=Root(user), user=user, vm="forged", timeout_factor=0.01)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kind", sorted(FORGERIES))
def test_every_forged_answer_is_could_not_check(kind: str, layout: str) -> None:
    report = _check(User(FORGERIES[kind], runs_first_line=False, layout=layout))
    assert report.verdict == "inconclusive"
    assert len(report.probes) == len(catalog.select(load_policy("builtin:ai-worker")))
    assert not report.infrastructure  # root saw everything: only the user's side lied
    assert not any(p.outcome == "held" for p in report.probes)
    # Only root's ground makes a probe not applicable: the policy lists no set-uid baseline,
    # and root's discovery on these guests found no helper, no compose plugin, no fail2ban.
    assert sorted(p.probe_id for p in report.probes if p.outcome == "not-applicable") == sorted(
        ("gn-setuid-audit", *ROOT_FOUND_ABSENT)
    )
    with pytest.raises(CheckInfrastructureError) as info:
        raise_for_verdict(report)
    assert info.value.exit_code == 11


def test_forged_not_applicable_even_with_witnesses_is_not_believed() -> None:
    report = _check(User(FORGERIES["not-applicable"], runs_first_line=True))
    assert report.verdict == "inconclusive"
    controls = [p for p in report.probes if p.control]
    assert controls and all(p.outcome == "error" for p in controls)
    assert all(
        "not believed" in p.observed or p.control
        for p in report.probes
        if p.probe_id not in ("gn-setuid-audit", *ROOT_FOUND_ABSENT)
    )
    absent = [p for p in report.probes if p.probe_id in ROOT_FOUND_ABSENT]
    assert len(absent) == len(ROOT_FOUND_ABSENT)
    assert all(p.outcome == "not-applicable" and "not believed" not in p.observed for p in absent)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_an_honest_refusing_guest_is_held(layout: str) -> None:
    report = _check(User(FORGERIES["denied"], runs_first_line=True, layout=layout))
    assert report.verdict == "held", report.inconclusive[:3]
    assert len(report.probes) == len(catalog.select(load_policy("builtin:ai-worker")))
