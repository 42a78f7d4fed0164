"""The table of every setting: its key, type, default, checks, flag and old NixOS option.

One table feeds the config loader (``stagingvm.config.load``), ``pr-test-vm config`` and the
consistency test of docs/configuration.md, so a new setting is added in exactly one place
(plus its field in ``stagingvm.settings``; a unit test checks the two agree).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stagingvm.errors import ConfigError, InvalidInputError
from stagingvm.names import USER_RE
from stagingvm.settings import NetworkSettings, RemoteSettings, Settings, SSHSettings, Timeouts

Check = Callable[[Any], str | None]  # returns a problem, or None when the value is fine


@dataclass(frozen=True)
class Source:
    """Where one setting's value came from, for ``pr-test-vm config`` and error messages."""

    kind: str  # default | derived | system file | user file | config file | environment | flag
    detail: str | None = None  # a path (with :line), an environment variable, a flag

    def __str__(self) -> str:
        return self.kind if self.detail is None else f"{self.kind} {self.detail}"


@dataclass(frozen=True)
class KeySpec:
    key: str  # dotted TOML key, e.g. "network.subnet"
    kind: str  # str | int | float | path | optional-path | str-list
    default: Any
    doc: str
    check: Check | None = None
    flag: str | None = None  # the global command-line flag that sets it, if any
    nixos: str | None = None  # the old services.staging-vm option it replaces


def env_var_for(key: str) -> str:
    """``network.dhcp_start`` -> ``STAGINGVM_NETWORK_DHCP_START``."""
    return "STAGINGVM_" + key.upper().replace(".", "_")


def _matches(pattern: str, what: str) -> Check:
    regex = re.compile(pattern)

    def check(value: Any) -> str | None:
        return None if regex.fullmatch(value) else f"{value!r} is not a valid {what}"

    return check


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _between(low: float, high: float, unit: str = "") -> Check:
    def check(value: Any) -> str | None:
        if low <= value <= high:
            return None
        return f"{value} is out of range ({_num(low)}..{_num(high)}{unit})"

    return check


def _positive_seconds(value: Any) -> str | None:
    return None if 0 < value <= 86400 else f"{value} is out of range (more than 0, at most 86400 s)"


def _each(check: Check) -> Check:
    def check_all(values: Any) -> str | None:
        if len(set(values)) != len(values):
            return "lists a value twice"
        return next((p for p in map(check, values) if p is not None), None)

    return check_all


def _one_of(*choices: str) -> Check:
    def check(value: Any) -> str | None:
        return None if value in choices else f"{value!r} is not one of {', '.join(choices)}"

    return check


def _subnet(value: Any) -> str | None:
    try:
        net = ipaddress.IPv4Network(value, strict=False)
    except ValueError:
        return f"{value!r} is not an IPv4 subnet like 192.168.150.0/24"
    if str(net) != value:
        return f"{value!r} has host bits set; did you mean {net}?"
    if net.prefixlen > 29:
        return f"{value!r} is too small: use a prefix of /29 or shorter"
    return None


def _ipv4(value: Any) -> str | None:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return f"{value!r} is not an IPv4 address"
    return None


_NET, _SSH, _T, _S = NetworkSettings(), SSHSettings(), Timeouts(), Settings()
_R = RemoteSettings()
_LIBVIRT_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,49}"

KEYS: tuple[KeySpec, ...] = (
    KeySpec("uri", "str", _S.uri, "libvirt connection URI",
            _matches(r"[a-z][a-z0-9+.-]*:.*", "libvirt URI"), flag="--uri"),
    KeySpec("hosts", "str-list", _S.hosts,
            "several libvirt URIs: start/test pick the one with the most free memory",
            _each(_matches(r"[a-z][a-z0-9+.-]*:.*", "libvirt URI")), flag="--uri (repeated)"),
    KeySpec("network.name", "str", _NET.name, "name of the libvirt NAT network",
            _matches(_LIBVIRT_NAME, "network name"), nixos="network.name"),
    KeySpec("network.bridge", "str", _NET.bridge, "bridge device of the network",
            _matches(r"(?!\.\.?$)[A-Za-z0-9_.-]{1,15}", "bridge name (at most 15 characters)"),
            nixos="network.bridge"),
    KeySpec("network.subnet", "str", _NET.subnet, "IPv4 subnet of the network (CIDR)",
            _subnet, nixos="network.subnet"),
    KeySpec("network.dhcp_start", "str", _NET.dhcp_start, "first address handed out by DHCP",
            _ipv4, nixos="network.dhcpStart"),
    KeySpec("network.dhcp_end", "str", _NET.dhcp_end, "last address handed out by DHCP",
            _ipv4, nixos="network.dhcpEnd"),
    KeySpec("pool_name", "str", _S.pool_name, "name of the libvirt storage pool",
            _matches(_LIBVIRT_NAME, "pool name")),
    KeySpec("storage_pool", "path", _S.storage_pool, "directory of the storage pool",
            nixos="storagePool"),
    KeySpec("data_dir", "path", _S.data_dir, "stagingvm's own state (keys, logs, caches)",
            flag="--data-dir", nixos="dataDir"),
    KeySpec("memory", "int", _S.memory, "default guest memory in MiB",
            _between(64, 1048576, " MiB"), nixos="memory"),
    KeySpec("vcpus", "int", _S.vcpus, "default number of guest vCPUs",
            _between(1, 256), nixos="vcpus"),
    KeySpec("accel", "str", _S.accel, "acceleration: auto (try KVM), kvm (require) or tcg",
            _one_of("auto", "kvm", "tcg")),
    KeySpec("ssh.user", "str", _SSH.user, "default user of `pr-test-vm ssh`",
            _matches(USER_RE.pattern, "user name")),
    KeySpec("ssh.key", "optional-path", _SSH.key,
            "SSH private key; unset: <data_dir>/keys/id_ed25519, made on first use"),
    KeySpec("remote.jump", "str", _R.jump,
            "user@host[:port] guests are reached through; unset: a qemu+ssh URI's own host",
            _matches(r"|[^\s@]+@[^\s@]+", "user@host[:port]")),
    KeySpec("remote.key", "optional-path", _R.key,
            "key to log into the jump host; unset: the URI's ?keyfile=, else stagingvm's key"),
    KeySpec("remote.known_hosts", "optional-path", _R.known_hosts,
            "OpenSSH known_hosts vouching for the jump host's first key; unset: ~/.ssh's"),
    KeySpec("timeouts.running", "float", _T.running, "seconds until the domain runs",
            _positive_seconds),
    KeySpec("timeouts.lease", "float", _T.lease, "seconds until the guest has a DHCP lease",
            _positive_seconds),
    KeySpec("timeouts.banner", "float", _T.banner, "seconds until SSH shows its banner",
            _positive_seconds),
    KeySpec("timeouts.login", "float", _T.login, "seconds until an SSH login works",
            _positive_seconds),
    KeySpec("timeouts.shutdown", "float", _T.shutdown, "seconds `stop` waits for ACPI shutdown",
            _positive_seconds),
    KeySpec("timeouts.tcg_factor", "float", _T.tcg_factor,
            "every time-out is multiplied by this under software emulation (TCG)",
            _between(1, 100)),
)  # fmt: skip

SPECS_BY_KEY: Mapping[str, KeySpec] = {spec.key: spec for spec in KEYS}
SECTIONS = frozenset(spec.key.split(".", 1)[0] for spec in KEYS if "." in spec.key)


def check_value(key: str, value: float | None, *, label: str | None = None) -> None:
    """Hold *value* (None: not given) to the rule of setting *key*, e.g. a per-command
    override of it; InvalidInputError ("LABEL: problem", *label* defaulting to *key*)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(f"{label or key} must be a number, not {value!r}")
    check = SPECS_BY_KEY[key].check
    problem = check(value) if check is not None else None
    if problem is not None:
        raise InvalidInputError(f"{label or key}: {problem}")


_TYPE_NAMES = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "path": "a path (string)",
    "optional-path": "a path (string)",
    "str-list": "an array of strings",
}


def convert(spec: KeySpec, raw: Any, *, where: str, origin: str, cwd: Path | None) -> Any:
    """Check and convert one raw value.

    *origin* ``file``: a TOML value whose type must already be right. ``env``: a string to
    parse. Relative paths are resolved against *cwd* for the environment and flags, and
    refused in files.
    """
    try:
        value = _parse(spec, raw, origin=origin, cwd=cwd)
    except ValueError as exc:
        raise ConfigError(
            f"{where}: {spec.key}: {exc}", hint="see `pr-test-vm help configuration`"
        ) from None
    if spec.check is not None and value is not None and not isinstance(value, Path):
        problem = spec.check(value)
        if problem is not None:
            raise ConfigError(
                f"{where}: {spec.key}: {problem}", hint="see `pr-test-vm help configuration`"
            )
    return value


def _parse(spec: KeySpec, raw: Any, *, origin: str, cwd: Path | None) -> Any:
    expected = _TYPE_NAMES[spec.kind]
    if origin == "env":
        if not isinstance(raw, str):
            raise TypeError(f"environment value of {spec.key} is not a string")  # a bug
        text = raw.strip()
        if spec.kind == "int":
            try:
                return int(text)
            except ValueError:
                raise ValueError(f"{raw!r} is not {expected}") from None
        if spec.kind == "float":
            try:
                return float(text)
            except ValueError:
                raise ValueError(f"{raw!r} is not {expected}") from None
        if spec.kind == "str-list":  # blanks or commas between the items
            return tuple(item for item in re.split(r"[\s,]+", text) if item)
        if spec.kind in ("path", "optional-path"):
            if not text:
                if spec.kind == "optional-path":
                    return None
                raise ValueError("an empty path is not allowed")
            path = Path(text).expanduser()
            return path if path.is_absolute() or cwd is None else cwd / path
        return raw
    # TOML value (or a typed flag): the type must match; bool is not a number.
    if spec.kind == "int":
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ValueError(f"expected {expected}, got {_toml_type(raw)}")
        return raw
    if spec.kind == "float":
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ValueError(f"expected {expected}, got {_toml_type(raw)}")
        return float(raw)
    if spec.kind == "str-list":
        if not isinstance(raw, list | tuple) or not all(isinstance(v, str) for v in raw):
            raise ValueError(f"expected {expected}, got {_toml_type(raw)}")
        return tuple(raw)
    if not isinstance(raw, str):
        raise ValueError(f"expected {expected}, got {_toml_type(raw)}")
    if spec.kind in ("path", "optional-path"):
        if not raw:
            raise ValueError("an empty path is not allowed")
        path = Path(raw).expanduser()
        if not path.is_absolute():
            raise ValueError(f"{raw!r} is relative: use an absolute path (or ~/...)")
        return path
    return raw


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def default_dhcp_range(subnet: str) -> tuple[str, str]:
    """DHCP range for *subnet*: leave the first hosts for the gateway and static use."""
    net = ipaddress.IPv4Network(subnet)
    skip = 10 if net.num_addresses >= 64 else 2
    return str(net.network_address + skip), str(net.broadcast_address - 1)


def check_network(values: Mapping[str, Any], sources: Mapping[str, Source]) -> None:
    """Cross-field checks: the DHCP range lies inside the subnet and misses the gateway.

    The gateway (the bridge's own address) is the subnet's first host address.
    """

    def where(key: str) -> str:
        return f"{key} = {values[key]} ({sources[key]})"

    net = ipaddress.IPv4Network(values["network.subnet"])
    start = ipaddress.IPv4Address(values["network.dhcp_start"])
    end = ipaddress.IPv4Address(values["network.dhcp_end"])
    gateway = net.network_address + 1
    hint = "set network.dhcp_start and network.dhcp_end inside network.subnet, or leave both unset"
    for key, addr in (("network.dhcp_start", start), ("network.dhcp_end", end)):
        if addr not in net:
            raise ConfigError(f"{where(key)} is outside {where('network.subnet')}", hint=hint)
        if addr in (net.network_address, net.broadcast_address, gateway):
            role = {net.network_address: "network", net.broadcast_address: "broadcast"}.get(
                addr, "gateway"
            )
            raise ConfigError(f"{where(key)} is the subnet's {role} address", hint=hint)
    if start > end:
        raise ConfigError(
            f"{where('network.dhcp_start')} comes after {where('network.dhcp_end')}", hint=hint
        )
