"""Build the effective ``Settings`` from every source, remembering where each value came from.

Sources, lowest to highest priority::

    defaults < /etc/stagingvm/config.toml < $XDG_CONFIG_HOME/stagingvm/config.toml
             < LIBVIRT_DEFAULT_URI (uri only, as virsh reads it)
             < STAGINGVM_* environment < command-line flags

``--config FILE`` (or ``STAGINGVM_CONFIG``) names a file explicitly; it takes the place of the
user file (the system file is still read below it) and, unlike the two usual files, must exist.

Why the caller passes everything in: the library never reads the environment or the disk on
its own, so the CLI hands over ``os.environ`` and the file locations, and tests hand over a
dict and temporary paths. Nothing here runs at import time.

Validation is strict because a typo in a config file must not silently fall back to a default
that then touches the wrong network: unknown keys, wrong types, bad addresses and out-of-range
numbers all raise ``ConfigError`` naming the file, the key and (``tomllib`` gives no positions)
the line we find for the key ourselves.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stagingvm.boundedread import CONFIG_CAP, parse_toml, read_bounded
from stagingvm.config import keys
from stagingvm.config.keys import KEYS, KeySpec, Source, env_var_for
from stagingvm.errors import ConfigError, InvalidInputError
from stagingvm.settings import NetworkSettings, RemoteSettings, Settings, SSHSettings, Timeouts

SYSTEM_CONFIG_FILE = Path("/etc/stagingvm/config.toml")
CONFIG_ENV_VAR = "STAGINGVM_CONFIG"
LIBVIRT_URI_ENV_VAR = "LIBVIRT_DEFAULT_URI"


@dataclass(frozen=True)
class ConfigLocations:
    """Which config files to read. Injectable so tests never read the real /etc."""

    system_file: Path = SYSTEM_CONFIG_FILE
    user_file: Path | None = None  # None: $XDG_CONFIG_HOME (or ~/.config)/stagingvm/config.toml


@dataclass(frozen=True)
class LoadedSettings:
    settings: Settings
    sources: Mapping[str, Source]
    files: tuple[Path, ...] = ()  # the config files that were actually read
    searched: tuple[Path, ...] = ()  # every config file looked for, in order (read or not)
    warnings: tuple[str, ...] = ()  # e.g. a STAGINGVM_ variable that looks like a typo

    def value(self, key: str) -> Any:
        """The effective value of a dotted key such as ``network.subnet``."""
        obj: Any = self.settings
        for part in key.split("."):
            obj = getattr(obj, part)
        return obj

    def to_json(self) -> dict[str, Any]:
        """The schema of ``pr-test-vm config --json``."""
        settings = {}
        for spec in KEYS:
            value = self.value(spec.key)
            src = self.sources[spec.key]
            settings[spec.key] = {
                "value": str(value)
                if isinstance(value, Path)
                else list(value)
                if isinstance(value, tuple)
                else value,
                "source": src.kind,
                "detail": src.detail,
                "env": env_var_for(spec.key),
            }
        return {
            "settings": settings,
            "files": [str(p) for p in self.files],
            "searched": [str(p) for p in self.searched],
            "warnings": list(self.warnings),
        }


@dataclass
class _Layer:
    """Values of one source, already converted and checked one by one."""

    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)


def user_config_file(env: Mapping[str, str]) -> Path | None:
    """``$XDG_CONFIG_HOME/stagingvm/config.toml``, or under ``$HOME/.config``; None if neither."""
    xdg = env.get("XDG_CONFIG_HOME", "")
    if xdg and Path(xdg).is_absolute():  # the XDG spec says to ignore relative values
        return Path(xdg) / "stagingvm" / "config.toml"
    home = env.get("HOME", "")
    if home:
        return Path(home) / ".config" / "stagingvm" / "config.toml"
    return None


def load_settings(
    *,
    env: Mapping[str, str],
    flags: Mapping[str, tuple[Any, str]] | None = None,
    config_file: Path | None = None,
    locations: ConfigLocations | None = None,
    cwd: Path | None = None,
) -> LoadedSettings:
    """Merge every source into a validated ``Settings``.

    *flags* maps a dotted key to ``(value, flag name)``, e.g. ``{"uri": ("test:///default",
    "--uri")}``; values set to None are ignored. *config_file* (the ``--config`` flag) wins over
    ``STAGINGVM_CONFIG`` in *env*. *cwd* resolves relative paths given in the environment or
    on the command line (relative paths in files are refused: relative to what?).
    """
    locations = locations or ConfigLocations()
    base = cwd or Path.cwd()
    layers: list[_Layer] = []
    files: list[Path] = []
    searched: list[Path] = [locations.system_file]

    system = _read_file(locations.system_file, "system file", required=False)
    if system is not None:
        layers.append(system)
        files.append(locations.system_file)

    explicit, explicit_kind = config_file, "config file"
    if explicit is None and env.get(CONFIG_ENV_VAR):
        explicit = Path(env[CONFIG_ENV_VAR])
    if explicit is not None:
        explicit = explicit if explicit.is_absolute() else base / explicit
        searched.append(explicit)
        layer = _read_file(explicit, explicit_kind, required=True)
        assert layer is not None  # required=True raises instead
        layers.append(layer)
        files.append(explicit)
    else:
        user_file = locations.user_file or user_config_file(env)
        if user_file is not None:
            searched.append(user_file)
            layer = _read_file(user_file, "user file", required=False)
            if layer is not None:
                layers.append(layer)
                files.append(user_file)

    env_layer, warnings = _env_layer(env, base)
    layers.append(env_layer)
    layers.append(_flag_layer(flags or {}, base))

    values: dict[str, Any] = {spec.key: spec.default for spec in KEYS}
    sources: dict[str, Source] = {spec.key: Source("default") for spec in KEYS}
    for layer in layers:
        values.update(layer.values)
        sources.update(layer.sources)

    _derive_dhcp_range(values, sources)
    keys.check_network(values, sources)
    return LoadedSettings(
        settings=_build(values),
        sources=sources,
        files=tuple(files),
        searched=tuple(searched),
        warnings=tuple(warnings),
    )


def _read_file(path: Path, kind: str, *, required: bool) -> _Layer | None:
    if not os.path.lexists(path):
        if required:
            raise ConfigError(
                f"config file {path} does not exist",
                hint="check the path given with --config or STAGINGVM_CONFIG",
            )
        return None
    import tomllib  # only when there is a file to read

    try:
        # Bounded, regular files only: a FIFO or /dev/zero is bad input, never a hang.
        text = read_bounded(path, CONFIG_CAP, "config file")
        data = parse_toml(text, f"config file {path}")
    except InvalidInputError as exc:
        raise ConfigError(exc.message, hint=exc.hint) from None
    except tomllib.TOMLDecodeError as exc:
        # The message carries "(at line N, column M)".
        raise ConfigError(
            f"{path}: not valid TOML: {exc}",
            hint="see `pr-test-vm help configuration` for the format",
        ) from exc

    layer = _Layer()
    for dotted, raw in _flatten(data, path, text):
        spec = keys.SPECS_BY_KEY[dotted]
        line = find_key_line(text, dotted)
        where = f"{path}:{line}" if line else str(path)
        layer.values[dotted] = keys.convert(spec, raw, where=where, origin="file", cwd=None)
        layer.sources[dotted] = Source(kind, where)
    return layer


def _flatten(data: Mapping[str, Any], path: Path, text: str) -> list[tuple[str, Any]]:
    """Turn nested tables into dotted keys, refusing any key that is not a setting."""
    out: list[tuple[str, Any]] = []

    def walk(table: Mapping[str, Any], prefix: str) -> None:
        for name, value in table.items():
            dotted = f"{prefix}{name}"
            if dotted in keys.SECTIONS:
                if not isinstance(value, dict):
                    _unknown_or_wrong(path, text, dotted, f"[{dotted}] must be a table")
                walk(value, dotted + ".")
            elif dotted in keys.SPECS_BY_KEY:
                out.append((dotted, value))
            else:
                _unknown_or_wrong(path, text, dotted, None)

    walk(data, "")
    return out


def _unknown_or_wrong(path: Path, text: str, dotted: str, problem: str | None) -> None:
    line = find_key_line(text, dotted)
    where = f"{path}:{line}" if line else str(path)
    if problem is not None:
        raise ConfigError(f"{where}: {problem}")
    candidates = [spec.key for spec in KEYS] + sorted(keys.SECTIONS)
    close = difflib.get_close_matches(dotted, candidates, n=1, cutoff=0.6)
    hint = (
        f"did you mean '{close[0]}'?"
        if close
        else "see `pr-test-vm help configuration` for every key"
    )
    raise ConfigError(f"{where}: unknown key '{dotted}'", hint=hint)


def find_key_line(text: str, dotted: str) -> int | None:
    """The 1-based line that sets *dotted* (or opens the table *dotted*), if we can find it.

    Understands ``[table]`` headers, ``key =`` and ``table.key =`` lines, and quoted keys;
    enough for hand-written config files. Returns None when unsure rather than guessing.
    """
    table = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and not line.startswith("[["):
            table = _bare_key(line[1:].split("]", 1)[0])
            if table == dotted:
                return number
            continue
        if "=" not in line:
            continue
        key = _bare_key(line.split("=", 1)[0])
        full = f"{table}.{key}" if table else key
        if full == dotted or (dotted.startswith(full + ".") and "{" in line):
            return number
    return None


def _bare_key(text: str) -> str:
    parts = [p.strip().strip("\"'") for p in text.strip().split(".")]
    return ".".join(parts)


def _env_layer(env: Mapping[str, str], cwd: Path) -> tuple[_Layer, list[str]]:
    layer = _Layer()
    known = {env_var_for(spec.key): spec for spec in KEYS}
    warnings: list[str] = []
    if env.get(LIBVIRT_URI_ENV_VAR):  # virsh's variable; STAGINGVM_URI below wins over it
        layer.values["uri"] = keys.convert(
            keys.SPECS_BY_KEY["uri"],
            env[LIBVIRT_URI_ENV_VAR],
            where=LIBVIRT_URI_ENV_VAR,
            origin="env",
            cwd=cwd,
        )
        layer.sources["uri"] = Source("environment", LIBVIRT_URI_ENV_VAR)
    for name in sorted(env):
        if not name.startswith("STAGINGVM_") or name == CONFIG_ENV_VAR:
            continue
        spec = known.get(name)
        if spec is None:
            # Other parts of the project use STAGINGVM_* too (STAGINGVM_E2E_URI, ...): only
            # a name one or two typing slips away from a setting is flagged.
            close = [c for c in known if typo_distance(name, c) <= 2]
            if close:
                warnings.append(f"{name} is not a setting; did you mean {min(close)}?")
            continue
        layer.values[spec.key] = keys.convert(spec, env[name], where=name, origin="env", cwd=cwd)
        layer.sources[spec.key] = Source("environment", name)
    return layer, warnings


def typo_distance(a: str, b: str) -> int:
    """Edits (insert, delete, replace, swap two neighbours) that turn *a* into *b*."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
    return prev[-1]


def _flag_layer(flags: Mapping[str, tuple[Any, str]], cwd: Path) -> _Layer:
    layer = _Layer()
    for dotted, (value, flag) in flags.items():
        if value is None:
            continue
        spec = keys.SPECS_BY_KEY.get(dotted)
        if spec is None:
            raise KeyError(f"flag {flag} maps to unknown setting {dotted!r}")  # a bug
        if isinstance(value, Path):
            value = str(value)
        # Text (Typer hands over str and Path) is parsed like an environment value; typed
        # values (numbers) are checked like TOML values.
        origin = "env" if isinstance(value, str) else "file"
        layer.values[dotted] = keys.convert(spec, value, where=flag, origin=origin, cwd=cwd)
        layer.sources[dotted] = Source("flag", flag)
    return layer


def _derive_dhcp_range(values: dict[str, Any], sources: dict[str, Source]) -> None:
    """Follow a changed subnet with the DHCP range unless the range was set explicitly."""
    if sources["network.subnet"].kind == "default":
        return
    start, end = keys.default_dhcp_range(values["network.subnet"])
    for key, value in (("network.dhcp_start", start), ("network.dhcp_end", end)):
        if sources[key].kind == "default":
            values[key] = value
            sources[key] = Source("derived", "from network.subnet")


def _build(values: Mapping[str, Any]) -> Settings:
    sections: dict[str, type[Any]] = {
        "network": NetworkSettings,
        "ssh": SSHSettings,
        "timeouts": Timeouts,
        "remote": RemoteSettings,
    }
    top: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        if f.name in sections:
            cls = sections[f.name]
            top[f.name] = cls(
                **{g.name: values[f"{f.name}.{g.name}"] for g in dataclasses.fields(cls)}
            )
        else:
            top[f.name] = values[f.name]
    return Settings(**top)


__all__ = [
    "CONFIG_ENV_VAR",
    "SYSTEM_CONFIG_FILE",
    "ConfigLocations",
    "KeySpec",
    "LoadedSettings",
    "Source",
    "find_key_line",
    "load_settings",
    "user_config_file",
]
