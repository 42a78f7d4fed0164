"""Build a NixOS configuration into a bootable disk image with the host's ``nix``.

The only module that runs nix. Without nix on PATH only ``build TARGET`` fails (with
``ToolMissingError``); ``build --image PATH`` and every other verb work without it.

The steps: parse the target (``stagingvm.nixbuild.expr``), run ``nix build --json`` on the
project's ``nix/build-image.nix`` with the values as JSON, keep the full log in ``<data_dir>/logs``,
report each derivation nix builds to the Progress object, keep a GC root
(``<data_dir>/gcroots/NAME`` by default) so the image survives ``nix-collect-garbage``, and find
the image through ``$out/nix-support/hydra-build-products`` rather than guessing a file name.
``import_result`` then imports it as a base volume keyed by its store path, so building the
same configuration twice imports nothing the second time.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol, TypeVar

from stagingvm.errors import BuildError, ToolMissingError, WaitTimeoutError
from stagingvm.names import validate_name
from stagingvm.nixbuild.expr import GuestOptions, build_args, nix_build_argv, parse_target
from stagingvm.progress import NULL_PROGRESS, Progress
from stagingvm.settings import Settings

if TYPE_CHECKING:
    from stagingvm.nixbuild.expr import Target

T = TypeVar("T")
MIN_VERSION = (2, 4)  # first release with `nix build --expr/--file` + flakes behind a flag
LOG_TAIL_LINES = 40
_VERSION_RE = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
_BUILDING_RE = re.compile(r"building '(/nix/store/[^']+?)(?:\.drv)?'")
_STORE_NAME_RE = re.compile(r"/nix/store/[a-z0-9]{32}-(.+)")


@dataclass(frozen=True)
class NixTool:
    path: str
    version: str


@dataclass(frozen=True)
class BuildResult:
    image: Path  # the disk image inside the store path
    store_path: str  # the output that holds it (also the import's source key)
    log: Path  # the full nix log
    name: str  # the base/VM name the build was made for
    format: str = "qcow2"  # "qcow2" or "raw"
    out_link: Path | None = None  # the GC root


Imported = TypeVar("Imported", covariant=True)


class Importer(Protocol[Imported]):
    """What ``import_result`` needs of ``stagingvm.vm.manager.Manager`` (whose ``import_base``
    returns a ``BaseImage``; the type is the caller's, so this layer needs no VM import)."""

    def import_base(self, image: Path, name: str, *, source_key: str | None = None) -> Imported: ...


def find_nix() -> NixTool:
    """The nix binary and its version; ``ToolMissingError`` if absent or too old."""
    path = shutil.which("nix")
    if path is None:
        raise ToolMissingError(
            "nix is not installed; `build --image PATH` still works",
            hint="install Nix (https://nixos.org/download) to build NixOS configurations",
        )
    try:
        done = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolMissingError(f"cannot run {path} --version: {exc}") from exc
    match = _VERSION_RE.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise ToolMissingError(f"cannot tell the version of {path}: {done.stdout or done.stderr}")
    if (int(match.group(1)), int(match.group(2))) < MIN_VERSION:
        raise ToolMissingError(
            f"nix {match.group(0)} is too old (need 2.4 or later for flakes)",
            hint="upgrade Nix, or build the image yourself and use `build --image PATH`",
        )
    return NixTool(path=path, version=match.group(0))


def nix_data_file(name: str) -> Path:
    """A file of the project's ``nix/`` folder: installed copy first, then the source tree."""
    here = Path(__file__).resolve().parent.parent  # the stagingvm package
    for candidate in (here / "_nix" / name, here.parent / "nix" / name):
        if candidate.is_file():
            return candidate
    raise ToolMissingError(f"stagingvm's nix/{name} is missing from this installation")


def default_out_link(settings: Settings, name: str) -> Path:
    return settings.data_dir / "gcroots" / name


def build_target(
    target: str,
    settings: Settings,
    *,
    name: str | None = None,
    nix_options: Sequence[tuple[str, str]] = (),
    out_link: Path | None = None,
    progress: Progress = NULL_PROGRESS,
    guest: GuestOptions | None = None,
    nixpkgs: Path | None = None,
    timeout: float | None = None,
    cwd: Path | None = None,
) -> BuildResult:
    """Build *target* (``FLAKE#HOST`` or ``PATH/configuration.nix``) into a disk image."""
    parsed = parse_target(target, cwd=cwd)
    name = validate_name(name if name is not None else parsed.default_name())
    nix = find_nix()
    link = out_link if out_link is not None else default_out_link(settings, name)
    link.parent.mkdir(parents=True, exist_ok=True)
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    log_path = settings.logs_dir / f"nix-{name}-{stamp}.log"
    args = build_args(parsed, guest_module=nix_data_file("guest.nix"), guest=guest, nixpkgs=nixpkgs)
    invocation = nix_build_argv(
        nix.path, nix_data_file("build-image.nix"), args, out_link=link, nix_options=nix_options
    )
    with progress.phase(f"nix build {parsed.describe()} (nix {nix.version})"):
        stdout = _run_logged(invocation.argv, log_path, progress, timeout, parsed)
    store_path = _out_path(stdout, log_path)
    image, fmt = find_image(Path(store_path))
    return BuildResult(
        image=image, store_path=store_path, log=log_path, name=name, format=fmt, out_link=link
    )


def import_result(
    result: BuildResult, manager: Importer[T], *, progress: Progress = NULL_PROGRESS
) -> T:
    """Import a build as base volume ``result.name``, keyed by its store path.

    The key makes a second import of the same store path a no-op (Manager's contract).
    """
    with progress.phase(f"importing {result.image.name} as base '{result.name}'"):
        return manager.import_base(result.image, result.name, source_key=result.store_path)


def find_image(store_path: Path) -> tuple[Path, str]:
    """The disk image listed in ``nix-support/hydra-build-products`` (``file TYPE PATH``).

    Prefers qcow2 over raw. The listed file must lie inside *store_path*: a derivation cannot
    make stagingvm import an arbitrary file of the host.
    """
    products = store_path / "nix-support" / "hydra-build-products"
    if not products.is_file():
        raise BuildError(
            f"{store_path} has no nix-support/hydra-build-products",
            hint="the target must evaluate to a disk image (system.build.images.qemu)",
        )
    root = store_path.resolve()
    found: list[tuple[int, Path, str]] = []
    for line in products.read_text(errors="replace").splitlines():
        parts = line.split(maxsplit=2)
        if len(parts) != 3 or parts[0] != "file":
            continue
        kind, path = parts[1], Path(parts[2].strip())
        fmt = _image_format(kind, path)
        if fmt is None:
            continue
        real = path.resolve()
        if not real.is_relative_to(root) or not real.is_file():
            raise BuildError(f"build product {path} is not a file inside {store_path}")
        found.append((0 if fmt == "qcow2" else 1, real, fmt))
    if not found:
        raise BuildError(
            f"no qcow2 or raw disk image listed in {products}",
            log_tail=products.read_text(errors="replace").splitlines()[-10:],
        )
    _, image, fmt = min(found)
    return image, fmt


def _image_format(kind: str, path: Path) -> str | None:
    if kind.startswith("qcow2") or path.suffix == ".qcow2":
        return "qcow2"
    if kind.startswith("raw") or path.suffix in (".img", ".raw"):
        return "raw"
    return None


def _out_path(stdout: str, log_path: Path) -> str:
    try:
        results = json.loads(stdout)
        out = results[0]["outputs"]["out"]
    except (ValueError, LookupError, TypeError) as exc:
        raise BuildError(
            f"cannot read nix's --json output: {stdout[:200]!r}", log_tail=_tail(log_path)
        ) from exc
    if not isinstance(out, str):
        raise BuildError(f"unexpected nix --json output: {stdout[:200]!r}")
    return out


def _run_logged(
    argv: list[str], log_path: Path, progress: Progress, timeout: float | None, target: Target
) -> str:
    """Run nix: stderr to the log (and progress notes), stdout returned; kill on time-out."""
    started = time.monotonic()
    timed_out = threading.Event()
    with log_path.open("w", encoding="utf-8") as log:
        log.write(f"$ {shlex.join(argv)}\n")
        log.flush()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # our own process group: we kill all of nix on the way out
        )
        out: list[bytes] = []
        assert proc.stdout is not None and proc.stderr is not None
        reader = threading.Thread(target=_read_all, args=(proc.stdout, out), daemon=True)
        reader.start()
        timer = None
        if timeout is not None:

            def expire() -> None:
                timed_out.set()
                _kill(proc)

            timer = threading.Timer(timeout, expire)
            timer.daemon = True
            timer.start()
        try:
            _follow_stderr(proc.stderr, log, progress)
            code = proc.wait()
        finally:
            if timer is not None:
                timer.cancel()
            if proc.poll() is None:  # Ctrl-C or an error while reading: stop nix too
                _kill(proc)
            reader.join(timeout=5)
    if timed_out.is_set():
        raise WaitTimeoutError(
            f"nix build of {target.describe()} did not finish within {timeout:.0f} s",
            phase="nix build",
            elapsed=time.monotonic() - started,
            console_tail=_tail(log_path),
            hint=f"full log: {log_path}",
        )
    if code != 0:
        raise BuildError(
            f"nix build of {target.describe()} failed (exit status {code})",
            log_tail=_tail(log_path),
            hint=f"full log: {log_path}",
        )
    return b"".join(out).decode("utf-8", errors="replace")


def _follow_stderr(stream: IO[bytes], log: IO[str], progress: Progress) -> None:
    for raw in stream:
        line = raw.decode("utf-8", errors="replace").rstrip("\n")
        log.write(line + "\n")
        log.flush()
        match = _BUILDING_RE.search(line)
        if match and "> " not in line.split("building", 1)[0]:
            progress.note(f"building {store_name(match.group(1))}")


def store_name(path: str) -> str:
    """``/nix/store/<hash>-foo-1.0`` -> ``foo-1.0``."""
    match = _STORE_NAME_RE.match(path)
    return match.group(1) if match else path


def _read_all(stream: IO[bytes], sink: list[bytes]) -> None:
    sink.append(stream.read())


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM nix's process group, then SIGKILL after 5 s."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(log_path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    try:
        with log_path.open(encoding="utf-8", errors="replace") as fh:
            return list(deque((line.rstrip("\n") for line in fh), maxlen=lines))
    except OSError:
        return []
