"""interrupt_once: the first stop signal interrupts, later ones only report the clean-up."""

from __future__ import annotations

import os
import signal

import pytest

from stagingvm.cli.signals import interrupt_once


def test_first_signal_interrupts_second_only_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    before = signal.getsignal(signal.SIGTERM)
    with interrupt_once():
        with pytest.raises(KeyboardInterrupt) as first:
            os.kill(os.getpid(), signal.SIGTERM)
        assert first.value.args == ("SIGTERM",)
        os.kill(os.getpid(), signal.SIGINT)  # the clean-up goes on
        assert capsys.readouterr().err == "SIGINT: cleaning up, please wait\n"
    assert signal.getsignal(signal.SIGTERM) is before  # restored afterwards
