"""Run a command inside the lab's namespace the way a shell runs a foreground job.

``lab exec`` is a wrapper: signals meant for the job must reach it, and the wrapper must
wait for the job to finish (its clean-up included) instead of killing it. SIGTERM and SIGHUP
(sent to the wrapper by a CI runner or a closing terminal) are forwarded; so is SIGINT,
unless the wrapper is the terminal's foreground job, where the terminal already delivers
Ctrl-C to the job itself (forwarding it too would interrupt the job's clean-up).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from types import FrameType

from stagingvm.errors import LabError
from stagingvm.lab.netns import exec_argv

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _terminal_sends_sigint_to_the_job() -> bool:
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (OSError, ValueError):  # no terminal, or stdin closed
        return False


def run_in_namespace(namespace: str, command: Sequence[str]) -> int:
    """Run *command* in *namespace*; its exit status (128 + N if signal N ended it)."""
    try:
        proc = subprocess.Popen(exec_argv(namespace, command))
    except FileNotFoundError as exc:
        raise LabError("`ip` is missing", hint="apt-get install iproute2") from exc

    def forward(signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGINT and _terminal_sends_sigint_to_the_job():
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        code = proc.wait()  # PEP 475: retried after each forwarded signal
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code
