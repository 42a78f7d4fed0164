"""A policy read from the trusted side of a pull request: ``REF:PATH`` in the git repo.

In CI the checkout is the pull request's: a policy file from its work tree is chosen by
the very change under test. ``--policy-ref origin/main:ci/policy.toml`` instead reads the
file as the base branch has it, with ``git show`` (argv only, REF and PATH validated, the
blob's size checked before it is read). When the base branch has no such file, the built-in
``ai-worker`` policy is used and the caller says so.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from stagingvm.errors import InvalidInputError, ToolMissingError

FALLBACK = "builtin:ai-worker"
_REF = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./@^~{}+-]{0,199}")
_PATH_PART = re.compile(r"[A-Za-z0-9_+@=,.-]{1,255}")


@dataclass(frozen=True)
class PolicyAtRef:
    ref: str
    path: str
    commit: str
    text: str | None  # None: no such file at that commit

    @property
    def source(self) -> str:
        return f"git {self.ref}:{self.path}"


def parse_spec(spec: str) -> tuple[str, str]:
    """``REF:PATH`` split and validated (no option injection, no path escape)."""
    ref, sep, path = spec.partition(":")
    if not sep or not ref or not path:
        raise InvalidInputError(
            f"--policy-ref {spec!r} is not REF:PATH", hint="example: origin/main:ci/policy.toml"
        )
    if not _REF.fullmatch(ref) or ".." in ref or ref.endswith((".", "/", ".lock")):
        raise InvalidInputError(f"--policy-ref: {ref!r} is not an acceptable git ref")
    parts = path.split("/")
    if any(p in (".", "..") or not _PATH_PART.fullmatch(p) or p.startswith("-") for p in parts):
        raise InvalidInputError(
            f"--policy-ref: {path!r} is not an acceptable path (relative, no '..')"
        )
    return ref, path


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False, timeout=60)
    except FileNotFoundError:
        raise ToolMissingError("git is not installed", hint="apt-get install git") from None


def read_at_ref(spec: str, cwd: Path, cap: int) -> PolicyAtRef:
    """The file *spec* names, as its commit has it (``text`` None when it is not there)."""
    ref, path = parse_spec(spec)
    proc = _git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"], cwd)
    if proc.returncode != 0:
        raise InvalidInputError(
            f"--policy-ref: {ref!r} is not a commit in the git repository at {cwd}",
            hint="fetch the base branch first (actions/checkout with fetch-depth: 0)",
        )
    commit = proc.stdout.decode("ascii", "replace").strip()
    size = _git(["cat-file", "-s", f"{commit}:{path}"], cwd)
    if size.returncode != 0:
        return PolicyAtRef(ref, path, commit, None)
    kind = _git(["cat-file", "-t", f"{commit}:{path}"], cwd).stdout.decode().strip()
    if kind != "blob":
        raise InvalidInputError(f"--policy-ref: {path} at {ref} is a {kind}, not a file")
    if int(size.stdout.decode().strip() or 0) > cap:
        raise InvalidInputError(f"--policy-ref: {path} at {ref} is larger than {cap} bytes")
    shown = _git(["show", f"{commit}:{path}"], cwd)
    if shown.returncode != 0:
        raise InvalidInputError(
            f"--policy-ref: git show {ref}:{path} failed: {shown.stderr.decode(errors='replace')}"
        )
    try:
        text = shown.stdout[: cap + 1].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"--policy-ref: {path} at {ref} is not UTF-8") from exc
    return PolicyAtRef(ref, path, commit, text)
