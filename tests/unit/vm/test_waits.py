"""The phase runner with a fake clock: fail fast on a dead guest, name the phase on time-out."""

from __future__ import annotations

import pytest

from stagingvm.errors import GuestFailedError, WaitTimeoutError
from stagingvm.vm.waits import Phase, PhaseRunner


class FakeClock:
    """Time that passes only when someone sleeps (or a check takes time)."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


class Guest:
    """A guest that dies after a number of polls (never, by default)."""

    def __init__(self, dies_after: int | None = None) -> None:
        self.polls = 0
        self.dies_after = dies_after

    def gone(self) -> str | None:
        self.polls += 1
        if self.dies_after is not None and self.polls > self.dies_after:
            return "crashed"
        return None


CONSOLE = [f"line {i}" for i in range(100)]


def tail(n: int) -> list[str]:
    return CONSOLE[-n:]


def counter_check(ready_after: int) -> tuple[list[int], object]:
    calls: list[int] = []

    def check() -> str | None:
        calls.append(1)
        return "192.168.150.10" if len(calls) >= ready_after else None

    return calls, check


def test_phase_returns_the_result_when_ready() -> None:
    clock = FakeClock()
    runner = PhaseRunner(guest_gone=Guest().gone, console_tail=tail, clock=clock)
    calls, check = counter_check(ready_after=4)
    assert runner.run(Phase("DHCP lease", 10.0, check, interval=0.5)) == "192.168.150.10"  # type: ignore[arg-type]
    assert len(calls) == 4
    assert clock.sleeps == [0.5, 0.5, 0.5]


def test_timeout_names_the_phase_and_carries_the_console_tail() -> None:
    clock = FakeClock()
    runner = PhaseRunner(guest_gone=Guest().gone, console_tail=tail, clock=clock)
    with pytest.raises(WaitTimeoutError) as err:
        runner.run(Phase("SSH banner", 3.0, lambda: None, interval=0.1, hint="is sshd on?"))
    exc = err.value
    assert exc.phase == "SSH banner"
    assert exc.elapsed == pytest.approx(3.0)
    assert "SSH banner" in str(exc) and exc.hint == "is sshd on?"
    assert exc.console_tail == CONSOLE[-30:]
    assert max(clock.sleeps) <= 0.1 + 1e-9  # the banner is polled every 0.1 s


def test_dead_guest_fails_at_once_not_at_the_timeout() -> None:
    clock = FakeClock()
    guest = Guest(dies_after=2)
    runner = PhaseRunner(guest_gone=guest.gone, console_tail=tail, clock=clock)
    with pytest.raises(GuestFailedError) as err:
        runner.run(Phase("DHCP lease", 600.0, lambda: None, interval=0.5))
    exc = err.value
    assert exc.phase == "DHCP lease"
    assert "crashed" in str(exc)
    assert exc.elapsed == pytest.approx(1.0)  # two polls, not 600 s
    assert exc.console_tail == CONSOLE[-30:]


def test_guest_dead_before_the_first_poll_never_runs_the_check() -> None:
    runner = PhaseRunner(guest_gone=lambda: "shut off", console_tail=tail, clock=FakeClock())
    calls, check = counter_check(ready_after=1)
    with pytest.raises(GuestFailedError):
        runner.run(Phase("domain running", 30.0, check))  # type: ignore[arg-type]
    assert calls == []


def test_last_sleep_is_cut_to_the_deadline() -> None:
    clock = FakeClock()
    runner = PhaseRunner(guest_gone=Guest().gone, console_tail=tail, clock=clock)
    with pytest.raises(WaitTimeoutError):
        runner.run(Phase("SSH login", 1.25, lambda: None, interval=1.0))
    assert clock.sleeps == [1.0, 0.25]


def test_slow_checks_count_against_the_timeout() -> None:
    clock = FakeClock()

    def slow_check() -> None:
        clock.t += 4.0  # an SSH login attempt that takes 4 s

    runner = PhaseRunner(guest_gone=Guest().gone, console_tail=tail, clock=clock)
    with pytest.raises(WaitTimeoutError) as err:
        runner.run(Phase("SSH login", 10.0, slow_check, interval=1.0))
    assert err.value.elapsed == pytest.approx(14.0)  # 3 attempts (0, 5, 10) + sleeps
