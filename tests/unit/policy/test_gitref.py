"""--policy-ref REF:PATH: the policy as the base branch has it, read with git."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from stagingvm.errors import InvalidInputError
from stagingvm.policy.gitref import parse_spec, read_at_ref


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    _git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "ci").mkdir()
    (tmp_path / "ci" / "policy.toml").write_text("# base\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    # The pull request's work tree changes the policy: the ref must not see it.
    (tmp_path / "ci" / "policy.toml").write_text("# the PR's own\n")
    return tmp_path


def test_reads_the_file_as_the_ref_has_it(repo: Path) -> None:
    got = read_at_ref("main:ci/policy.toml", repo, 1024)
    assert got.text == "# base\n"
    assert got.source == "git main:ci/policy.toml"
    assert len(got.commit) == 40


def test_missing_path_at_ref_gives_none(repo: Path) -> None:
    assert read_at_ref("main:ci/other.toml", repo, 1024).text is None


def test_unknown_ref_is_an_error_not_a_fallback(repo: Path) -> None:
    with pytest.raises(InvalidInputError, match="is not a commit"):
        read_at_ref("origin/nope:ci/policy.toml", repo, 1024)


def test_size_cap(repo: Path) -> None:
    with pytest.raises(InvalidInputError, match="larger than 3 bytes"):
        read_at_ref("main:ci/policy.toml", repo, 3)


def test_a_directory_is_not_a_policy(repo: Path) -> None:
    with pytest.raises(InvalidInputError, match="a tree, not a file"):
        read_at_ref("main:ci", repo, 1024)


@pytest.mark.parametrize(
    "spec",
    [
        "--output=/tmp/x:ci/policy.toml",
        "-c:x",
        "main:../etc/passwd",
        "main:/etc/passwd",
        "main:ci/-x",
        "main",
        ":ci/policy.toml",
        "main:",
        "a..b:ci/policy.toml",
        "main:ci//policy.toml",
        "ma in:policy.toml",
    ],
)
def test_bad_specs_are_refused(spec: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_spec(spec)


def test_load_policy_ref_uses_the_base_branch_and_names_source_and_digest(repo: Path) -> None:
    import hashlib

    from stagingvm.policy import load_policy, load_policy_ref

    builtin = load_policy("builtin:ai-worker")
    text = (
        Path(__file__).resolve().parents[3] / "stagingvm" / "policy" / "builtin" / "ai-worker.toml"
    ).read_text()
    (repo / "ci" / "real.toml").write_text(text)
    _git(repo, "add", "ci/real.toml")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "policy")
    # The PR's work tree empties the policy: the ref still has the real one.
    (repo / "ci" / "real.toml").write_text("version = 1\n")
    loaded, note = load_policy_ref("main:ci/real.toml", repo)
    assert note is None and loaded.source == "git main:ci/real.toml"
    assert loaded.sha256 == hashlib.sha256(text.encode()).hexdigest() == builtin.sha256
    fallback, said = load_policy_ref("main:ci/absent.toml", repo)
    assert said is not None and "does not exist at main" in said
    assert fallback.source.startswith("builtin:ai-worker") and fallback.sha256 == builtin.sha256
