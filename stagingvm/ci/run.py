"""The one-shot CI run behind ``pr-test-vm test``: build, start, wait, check, report, destroy.

``run_test`` owns everything one run creates and always cleans it up: the VM is destroyed
whatever happens (a failed build, a guest that never boots, a violated restriction, the
global time-out, Ctrl-C), unless the caller asked to keep it after a failure. Reports are
written in every case: the policy's own report when the checks ran, otherwise a report of
the phase that failed, so CI always has a JUnit file and a Markdown summary to show.

The outcome is returned, not printed; ``RunOutcome.raise_for_verdict`` raises
``RestrictionViolatedError`` (exit 10) when a check failed and ``CheckInfrastructureError``
(exit 11) when no verdict could be reached. The global
time-out works by interrupting the main thread (SIGINT from a timer thread); the interrupt
is told apart from Ctrl-C by the timer's flag. Signal handlers are the CLI's business.
"""

from __future__ import annotations

import hashlib
import signal
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from stagingvm.ci import report as ci_report
from stagingvm.ci.outcome import RunOutcome
from stagingvm.errors import (
    CheckInfrastructureError,
    NotFoundError,
    StagingVMError,
    WaitTimeoutError,
)
from stagingvm.images import build_image
from stagingvm.images.recipe import Recipe
from stagingvm.names import validate_name
from stagingvm.nixbuild import build as nixbuild
from stagingvm.nixbuild.expr import GuestOptions, sanitize_name
from stagingvm.progress import NULL_PROGRESS, Progress
from stagingvm.settings import Settings

if TYPE_CHECKING:
    from stagingvm.vm.manager import Manager


class CheckReport(Protocol):
    """What ``test`` needs of a policy report (``stagingvm.checks``)."""

    @property
    def verdict(self) -> str:
        """``held``, ``violated`` or ``inconclusive`` (the checks could not decide)."""
        ...

    def summary(self) -> str: ...

    def write_json(self, path: Path, *, run: Mapping[str, Any]) -> None:
        """The report as JSON, with the run's outcome (*run*) under the key ``run``."""
        ...

    def write_junit(self, path: Path) -> None: ...

    def write_markdown(self, path: Path) -> None: ...


class PolicyRunner(Protocol):
    """The policy side of a run (an adapter over ``stagingvm.checks``)."""

    def credentials(self) -> Mapping[str, str]:
        """systemd credentials the checks need in the guest (e.g. the restricted user's key)."""
        ...

    def run(self, vm_name: str) -> CheckReport:
        """Run the policy against the running VM *vm_name*."""
        ...

    def partial(self) -> CheckReport | None:
        """After ``run`` was interrupted (Ctrl-C, time-out): what it had found, if anything."""
        ...


@dataclass(frozen=True)
class ReportPaths:
    junit: Path | None = None
    markdown: Path | None = None
    json: Path | None = None


@dataclass(frozen=True)
class RunRequest:
    vm_name: str
    target: str | None = None  # FLAKE#HOST or configuration.nix: built with nix
    image: Path | None = None  # or a ready disk image
    recipe: Recipe | None = None  # or an image of stagingvm's own builder, built in the run
    reports: ReportPaths = field(default_factory=ReportPaths)
    keep_on_failure: bool = False
    timeout: float = 3600.0
    nix_options: tuple[tuple[str, str], ...] = ()
    nixpkgs: Path | None = None
    guest: GuestOptions | None = None
    pr_ref: str | None = None


def vm_name_for(pr: str | None, commit: str | None, suffix: str) -> str:
    """``pr42-1a2b3c4-x9k2``: from the PR number and commit, plus a suffix for uniqueness."""
    parts = []
    if pr:
        parts.append("pr" + sanitize_name(pr))
    if commit:
        parts.append(sanitize_name(commit)[:7])
    if not parts:
        parts.append("test")
    return validate_name("-".join([*parts, sanitize_name(suffix)])[:63].rstrip("-"))


def image_source_key(image: Path) -> str:
    """What identifies a ready disk image for ``--image``: path, size and modification time."""
    stat = image.stat()
    return f"file:{image}:{stat.st_size}:{stat.st_mtime_ns}"


def base_name_for(build_name: str, store_path: str) -> str:
    """One base per store path (``host-<8 chars of the store hash>``): parallel runs of
    different commits never replace each other's base; the same commit reuses it."""
    digest = Path(store_path).name[:8]
    return validate_name(f"{build_name[:54]}-{digest}")


class _Deadline:
    """The global time-out: interrupts the main thread once, and remembers that it did.

    It sends SIGINT to the main thread, which wakes a blocking sleep or read (a mere flag,
    as ``_thread.interrupt_main`` sets, would wait for it to end) and runs Python's SIGINT
    handler there. It only arms when that handler is Python's (the CLI makes sure of it; a
    process started with SIGINT ignored would otherwise never hear it) and when running in
    the main thread; otherwise the phases' own time-outs bound the run.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = time.monotonic()
        self.fired = threading.Event()
        self._timer: threading.Timer | None = None

    def remaining(self) -> float:
        return max(1.0, self.seconds - (time.monotonic() - self.started))

    def __enter__(self) -> _Deadline:
        main = threading.main_thread()
        if threading.current_thread() is main and callable(signal.getsignal(signal.SIGINT)):
            ident = main.ident
            assert ident is not None

            def fire() -> None:
                self.fired.set()
                signal.pthread_kill(ident, signal.SIGINT)

            self._timer = threading.Timer(self.seconds, fire)
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()


def run_test(
    request: RunRequest,
    settings: Settings,
    manager: Manager,
    policy: PolicyRunner,
    *,
    progress: Progress = NULL_PROGRESS,
) -> RunOutcome:
    """Build (or import) -> start -> check -> report -> destroy.

    Returns the outcome whatever the verdict (``outcome.raise_for_verdict()`` turns it into
    the exit code); only ``KeyboardInterrupt`` (Ctrl-C, SIGTERM through the CLI) propagates,
    after the clean-up and the reports.
    """
    validate_name(request.vm_name)
    if sum(x is not None for x in (request.target, request.image, request.recipe)) != 1:
        raise CheckInfrastructureError("test needs exactly one of a TARGET, --image or --recipe")
    outcome = RunOutcome(vm_name=request.vm_name)
    report: CheckReport | None = None
    started_vm = False
    deadline = _Deadline(request.timeout)
    try:
        with deadline:
            try:
                with _phase(outcome, "build", progress):
                    outcome.base = _prepare_base(
                        request, settings, manager, outcome, deadline, progress
                    )
                with _phase(outcome, "start", progress):
                    started_vm = True  # a failed start may leave parts behind: destroy them too
                    manager.start(
                        request.vm_name,
                        base=outcome.base,
                        wait=True,
                        keep_on_failure=request.keep_on_failure,
                        pr_ref=request.pr_ref,
                        label="stagingvm test",
                        credentials=policy.credentials(),
                    )
                with _phase(outcome, "check", progress):
                    report = policy.run(request.vm_name)
                outcome.phase = "report"
                outcome.summary = report.summary()
                outcome.verdict = _VERDICTS.get(report.verdict, "error")
                if outcome.verdict == "error":
                    outcome.error = outcome.summary
            except KeyboardInterrupt:
                if outcome.phase == "check":
                    report = policy.partial()  # what the checks found before: never lost
                if not deadline.fired.is_set():
                    outcome.verdict = "interrupted"
                    outcome.error = f"interrupted during {outcome.phase}"
                    raise
                _failed(
                    outcome,
                    WaitTimeoutError(
                        f"the run did not finish within {request.timeout:.0f} s",
                        phase=outcome.phase,
                        elapsed=request.timeout,
                        hint="raise --timeout, or look at which phase was slow",
                    ),
                    "timeout",
                )
            except StagingVMError as exc:
                _failed(outcome, exc, "error")
    finally:
        keep = request.keep_on_failure and outcome.verdict != "passed"
        if started_vm and not keep:
            _destroy(manager, request.vm_name, outcome, progress)
        outcome.kept = started_vm and keep
        _write_reports(request.reports, outcome, report)
    return outcome


def _prepare_base(
    request: RunRequest,
    settings: Settings,
    manager: Manager,
    outcome: RunOutcome,
    deadline: _Deadline,
    progress: Progress,
) -> str:
    image = request.image
    if request.recipe is not None:  # under the run's time-out, reported as its build phase
        image = build_image(request.recipe, settings, progress=progress)
    if image is not None:
        image = image.resolve()
        key = image_source_key(image)
        base = validate_name(
            f"{sanitize_name(image.stem)[:54]}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"
        )
        manager.import_base(image, base, source_key=key)
        return base
    assert request.target is not None
    result = nixbuild.build_target(
        request.target,
        settings,
        nix_options=request.nix_options,
        guest=request.guest,
        nixpkgs=request.nixpkgs,
        timeout=deadline.remaining(),
    )
    outcome.store_path, outcome.build_log = result.store_path, result.log
    name = base_name_for(result.name, result.store_path)
    manager.import_base(result.image, name, source_key=result.store_path)
    return name


@contextmanager
def _phase(outcome: RunOutcome, phase: str, progress: Progress) -> Iterator[None]:
    outcome.phase = phase
    started = time.monotonic()
    try:
        with progress.phase(phase):
            yield
    finally:
        outcome.durations[phase] = time.monotonic() - started


def _failed(outcome: RunOutcome, exc: StagingVMError, verdict: str) -> None:
    outcome.verdict = verdict
    outcome.error = exc.message
    outcome.hint = exc.hint
    outcome.detail = list(
        getattr(exc, "log_tail", None) or getattr(exc, "console_tail", None) or []
    )


def _destroy(manager: Manager, name: str, outcome: RunOutcome, progress: Progress) -> None:
    """Destroy the VM; a second Ctrl-C here is swallowed so the clean-up completes."""
    for attempt in range(3):
        try:
            with progress.phase(f"destroying {name}"):
                manager.destroy(name)
            outcome.destroyed = True
            return
        except KeyboardInterrupt:
            outcome.cleanup_errors.append(f"interrupted while destroying (attempt {attempt + 1})")
        except NotFoundError:  # a failed start already removed it
            outcome.destroyed = True
            return
        except StagingVMError as exc:
            outcome.cleanup_errors.append(f"destroy {name}: {exc.message}")
            return


def _write_reports(paths: ReportPaths, outcome: RunOutcome, report: CheckReport | None) -> None:
    writers: list[tuple[Path | None, str]] = [
        (paths.junit, "junit"),
        (paths.markdown, "markdown"),
        (paths.json, "json"),
    ]
    for path, kind in writers:
        if path is None:
            continue
        # No directory is created (the paths were checked before the run); a write that fails
        # is recorded and shown, and never replaces the verdict's exit code.
        try:
            _write_one(path, kind, outcome, report)
        except (OSError, ET.ParseError) as exc:
            outcome.report_errors.append(f"could not write the {kind} report {path}: {exc}")
            continue
        outcome.reports.append(path)


def _write_one(path: Path, kind: str, outcome: RunOutcome, report: CheckReport | None) -> None:
    if report is None:
        ci_report.WRITERS[kind](path, outcome)
        return
    if kind == "json":
        report.write_json(path, run=outcome.to_json())
    else:
        getattr(report, f"write_{kind}")(path)
    if kind == "markdown":
        ci_report.append_run_markdown(path, outcome)
    if kind == "junit" and outcome.verdict in ("interrupted", "timeout"):
        ci_report.append_run_junit(path, outcome)


_VERDICTS = {"held": "passed", "violated": "violated"}  # anything else: no verdict
