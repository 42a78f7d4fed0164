"""Targets and the nix command line: values travel as JSON data, never as Nix source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stagingvm.errors import InvalidInputError, NotFoundError
from stagingvm.nixbuild.expr import (
    ARGS_NAME,
    GuestOptions,
    Target,
    build_args,
    nix_build_argv,
    parse_target,
    sanitize_name,
)

HOSTILE = 'x"; builtins.abort "INJECTED"; ${toString 1} \\ \'\' '


@pytest.fixture
def flake(tmp_path: Path) -> Path:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "flake.nix").write_text("{ outputs = _: { }; }\n")
    return tmp_path / "repo"


def test_flake_target_is_made_absolute(flake: Path) -> None:
    target = parse_target("repo#lazyworkhorse", cwd=flake.parent)
    assert target == Target(kind="flake", flake_ref=str(flake), host="lazyworkhorse")
    assert target.default_name() == "lazyworkhorse"


def test_hash_alone_means_the_flake_in_the_current_folder(flake: Path) -> None:
    assert parse_target("#cyt-pi", cwd=flake).flake_ref == str(flake)


def test_nixos_configurations_prefix_is_accepted(flake: Path) -> None:
    assert parse_target(f"{flake}#nixosConfigurations.x").host == "x"


def test_flake_urls_pass_through_untouched() -> None:
    url = "git+https://git.example.org/infra?ref=pr-42"
    target = parse_target(f"{url}#lazyworkhorse")
    assert target.flake_ref == url
    assert parse_target("github:o/r#h").flake_ref == "github:o/r"


def test_flake_without_host_asks_for_one(flake: Path) -> None:
    with pytest.raises(InvalidInputError, match="say which host"):
        parse_target(str(flake))
    with pytest.raises(InvalidInputError):
        parse_target(f"{flake}#")


def test_classic_configuration_file_and_folder(tmp_path: Path) -> None:
    conf = tmp_path / "vm-config" / "configuration.nix"
    conf.parent.mkdir()
    conf.write_text("{ }\n")
    assert parse_target(str(conf)) == Target(kind="classic", configuration=conf)
    assert parse_target("vm-config", cwd=tmp_path).configuration == conf
    assert parse_target(str(conf)).default_name() == "vm-config"


def test_missing_things_are_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        parse_target(str(tmp_path / "nope.nix"))
    with pytest.raises(NotFoundError):
        parse_target(f"{tmp_path}#x")  # no flake.nix there


def test_control_characters_are_refused() -> None:
    with pytest.raises(InvalidInputError):
        parse_target("a\nb#x")


@pytest.mark.parametrize(
    ("raw", "name"),
    [("Lazy_WorkHorse", "lazy-workhorse"), ('we"ird ${x}', "we-ird-x"), ("---", "nixos")],
)
def test_sanitize_name(raw: str, name: str) -> None:
    assert sanitize_name(raw) == name


def test_hostile_values_round_trip_as_json(flake: Path, tmp_path: Path) -> None:
    target = Target(kind="flake", flake_ref=str(flake), host=HOSTILE)
    guest = GuestOptions(users=(HOSTILE,))
    args = build_args(target, guest_module=tmp_path / "guest.nix", guest=guest)
    inv = nix_build_argv("nix", Path("/x/build-image.nix"), args, out_link=tmp_path / "link")
    # Exactly one argument carries the values, right after `--argstr stagingvmArgs`.
    i = inv.argv.index(ARGS_NAME)
    assert inv.argv[i - 1] == "--argstr"
    decoded = json.loads(inv.argv[i + 1])
    assert decoded["host"] == HOSTILE
    assert decoded["guest"]["users"] == [HOSTILE]
    assert decoded["kind"] == "flake"
    # The hostile text appears on the command line only JSON-encoded; the Nix file is fixed.
    assert not any(HOSTILE in a for a in inv.argv)
    assert sum(json.dumps(HOSTILE)[1:-1] in a for a in inv.argv) == 1
    assert inv.argv[inv.argv.index("--file") + 1] == "/x/build-image.nix"


def test_command_line_suits_nix_2_8(tmp_path: Path) -> None:
    target = Target(kind="classic", configuration=tmp_path / "c.nix")
    args = build_args(target, guest_module=tmp_path / "g.nix", nixpkgs=tmp_path / "np")
    inv = nix_build_argv(
        "/usr/bin/nix",
        tmp_path / "b.nix",
        args,
        out_link=tmp_path / "root",
        nix_options=[("substituters", ""), ("max-jobs", "2")],
    )
    argv = inv.argv
    assert argv[:3] == ["/usr/bin/nix", "--extra-experimental-features", "nix-command flakes"]
    assert "--json" in argv and "--print-out-paths" not in argv
    assert argv[argv.index("--out-link") + 1] == str(tmp_path / "root")
    assert argv[argv.index("substituters") - 1 :][:3] == ["--option", "substituters", ""]
    assert json.loads(argv[-1])["nixpkgs"] == str(tmp_path / "np")


@pytest.mark.parametrize("key", ["", "--impure", "a b", "x\n"])
def test_bad_nix_option_names_are_refused(key: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError):
        nix_build_argv(
            "nix", tmp_path / "b.nix", {}, out_link=tmp_path / "l", nix_options=[(key, "1")]
        )
