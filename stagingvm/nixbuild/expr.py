"""What to ask nix for: parse a build target and turn it into a nix command line.

The Nix code itself is a fixed file of the project's own (``nix/build-image.nix``). This module
only decides *values* (flake reference, host, paths, guest options) and hands them to that file
as one JSON string through ``--argstr``; the file reads them with ``builtins.fromJSON``. Nothing
a user types is ever pasted into Nix source, so a hostile target cannot inject Nix code.

No subprocess runs here: ``stagingvm.nixbuild.build`` is the only module that runs nix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from stagingvm.errors import InvalidInputError, NotFoundError
from stagingvm.names import NAME_RE

ARGS_NAME = "stagingvmArgs"
"""The one argument of nix/build-image.nix."""

EXPERIMENTAL = "nix-command flakes"

# A flake URL has a scheme ("github:", "git+https:", "path:", "flake:"...); a local path has not.
_SCHEME_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*:")
# nix --option names are plain words; refuse anything that could be read as another flag.
_OPTION_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Target:
    """A parsed build target: ``FLAKE#HOST`` or a classic ``configuration.nix``."""

    kind: Literal["flake", "classic"]
    flake_ref: str | None = None
    host: str | None = None
    configuration: Path | None = None

    def describe(self) -> str:
        if self.kind == "flake":
            return f"{self.flake_ref}#{self.host}"
        return str(self.configuration)

    def default_name(self) -> str:
        """A VM/base name derived from the host or the configuration's folder."""
        if self.kind == "flake":
            raw = self.host or "nixos"
        else:
            assert self.configuration is not None
            stem = self.configuration.stem
            raw = self.configuration.parent.name if stem == "configuration" else stem
        return sanitize_name(raw)


def sanitize_name(raw: str) -> str:
    """Turn any text into a valid stagingvm name (lower case, '-' for anything else)."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")[:63].strip("-")
    if not cleaned or NAME_RE.fullmatch(cleaned) is None:
        cleaned = "nixos"
    return cleaned


def parse_target(text: str, *, cwd: Path | None = None) -> Target:
    """Parse ``FLAKE#HOST``, ``#HOST`` (flake in the current folder) or ``PATH[.nix]``.

    Local flake paths and configuration files are made absolute (``builtins.getFlake`` wants
    absolute paths) and must exist. ``FLAKE#nixosConfigurations.HOST`` is accepted too.
    """
    base = cwd if cwd is not None else Path.cwd()
    if not text or "\n" in text or "\0" in text:
        raise InvalidInputError(f"invalid build target {text!r}", hint=_TARGET_HINT)
    if "#" in text:
        ref, _, host = text.rpartition("#")
        host = host.removeprefix("nixosConfigurations.")
        if not host:
            raise InvalidInputError(f"no host after '#' in {text!r}", hint=_TARGET_HINT)
        return Target(kind="flake", flake_ref=_flake_ref(ref or ".", base), host=host)
    path = (base / text).resolve()
    if path.is_dir():
        if (path / "flake.nix").is_file():
            raise InvalidInputError(
                f"{text!r} is a flake: say which host to build",
                hint=f"use '{text}#HOST' (a name under nixosConfigurations)",
            )
        path = path / "configuration.nix"
    if not path.is_file():
        raise NotFoundError(f"NixOS configuration not found: {path}", hint=_TARGET_HINT)
    return Target(kind="classic", configuration=path)


_TARGET_HINT = "give FLAKE#HOST (e.g. '.#lazyworkhorse') or a path to a configuration.nix"


def _flake_ref(ref: str, base: Path) -> str:
    if _SCHEME_RE.match(ref) and not ref.startswith(("/", "./", "../")):
        return ref  # a flake URL: github:o/r, git+https://..., path:/abs, flake:nixpkgs
    path = (base / ref).resolve()
    if not (path / "flake.nix").is_file():
        raise NotFoundError(f"no flake.nix in {path}", hint=_TARGET_HINT)
    return str(path)


@dataclass(frozen=True)
class GuestOptions:
    """Values for the guest module's options (``stagingvm.guest`` in nix/guest.nix)."""

    users: Sequence[str] = ("ai-worker",)
    replace_boot: bool = True
    force_dhcp: bool = True

    def to_nix(self) -> dict[str, object]:
        return {
            "users": list(self.users),
            "replaceBoot": self.replace_boot,
            "forceDHCP": self.force_dhcp,
        }


@dataclass(frozen=True)
class Invocation:
    """The argument list of one ``nix build`` run and the JSON it passes."""

    argv: list[str]
    args: dict[str, object] = field(default_factory=dict)


def build_args(
    target: Target,
    *,
    guest_module: Path,
    guest: GuestOptions | None = None,
    nixpkgs: Path | None = None,
    image: str = "qemu",
) -> dict[str, object]:
    """The values nix/build-image.nix receives (as JSON)."""
    args: dict[str, object] = {
        "kind": target.kind,
        "guestModule": str(guest_module.resolve()),
        "guest": (guest or GuestOptions()).to_nix(),
        "image": image,
    }
    if target.kind == "flake":
        args["flakeRef"] = target.flake_ref
        args["host"] = target.host
    else:
        args["configuration"] = str(target.configuration)
        args["nixpkgs"] = str(nixpkgs.resolve()) if nixpkgs is not None else None
    return args


def nix_build_argv(
    nix: str,
    expression_file: Path,
    args: Mapping[str, object],
    *,
    out_link: Path,
    nix_options: Sequence[tuple[str, str]] = (),
) -> Invocation:
    """``nix build --json`` of *expression_file* with *args*: works from Nix 2.4 (2.8 tested).

    ``--json`` instead of ``--print-out-paths`` (missing in 2.8); ``--impure`` because
    ``builtins.getFlake`` of a local path and ``<nixpkgs>`` need it; ``-L`` so the builders'
    output lands in our log.
    """
    argv = [
        nix,
        "--extra-experimental-features",
        EXPERIMENTAL,
        "build",
        "--json",
        "--impure",
        "--print-build-logs",
        "--out-link",
        str(out_link),
    ]
    for key, value in nix_options:
        if _OPTION_NAME_RE.fullmatch(key) is None:
            raise InvalidInputError(
                f"invalid nix option name {key!r}", hint="e.g. --nix-option substituters ''"
            )
        argv += ["--option", key, value]
    argv += [
        "--file",
        str(expression_file),
        "--argstr",
        ARGS_NAME,
        json.dumps(dict(args), sort_keys=True),
    ]
    return Invocation(argv=argv, args=dict(args))


def parse_nix_option(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` (from ``--nix-option``) -> ``(KEY, VALUE)``; the value may be empty."""
    key, sep, value = text.partition("=")
    if not sep or _OPTION_NAME_RE.fullmatch(key) is None:
        raise InvalidInputError(
            f"invalid --nix-option {text!r}",
            hint="use KEY=VALUE, e.g. --nix-option substituters= --nix-option max-jobs=4",
        )
    return key, value
