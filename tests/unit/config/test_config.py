"""Settings loading: precedence of the five sources, provenance, strict validation.

Every test passes its own file locations and environment: the real /etc and ~ are never read.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from stagingvm.config.keys import KEYS, env_var_for
from stagingvm.config.load import (
    ConfigLocations,
    LoadedSettings,
    Source,
    find_key_line,
    load_settings,
    typo_distance,
    user_config_file,
)
from stagingvm.errors import ConfigError
from stagingvm.settings import DEFAULT_SUBNET, Settings


@pytest.fixture
def paths(tmp_path: Path) -> tuple[Path, Path, ConfigLocations]:
    system = tmp_path / "etc" / "config.toml"
    xdg = tmp_path / "xdg"
    user = xdg / "stagingvm" / "config.toml"
    system.parent.mkdir(parents=True)
    user.parent.mkdir(parents=True)
    return system, xdg, ConfigLocations(system_file=system)


def load(env: dict[str, str], locations: ConfigLocations, **kw: object) -> LoadedSettings:
    return load_settings(env=env, locations=locations, cwd=Path("/work"), **kw)  # type: ignore[arg-type]


def test_defaults_when_nothing_is_configured(tmp_path: Path) -> None:
    loaded = load({}, ConfigLocations(system_file=tmp_path / "none.toml"))
    assert loaded.settings == Settings()
    assert {src.kind for src in loaded.sources.values()} == {"default"}
    assert loaded.files == ()
    # The default must never be libvirt's own `default` network.
    assert not loaded.settings.network.subnet.startswith("192.168.122.")


def test_five_sources_in_order_with_provenance(
    paths: tuple[Path, Path, ConfigLocations],
) -> None:
    system, xdg, locations = paths
    # Each source sets the key it wins, plus everything below it tries to set the same keys.
    system.write_text(
        "memory = 1000\nvcpus = 3\nuri = 'qemu:///system-file'\naccel = 'tcg'\n"
        "[network]\nname = 'from-system'\n"
    )
    (xdg / "stagingvm" / "config.toml").write_text(
        "# user file\nvcpus = 4\nuri = 'qemu:///user-file'\naccel = 'kvm'\n"
    )
    env = {
        "XDG_CONFIG_HOME": str(xdg),
        "STAGINGVM_URI": "qemu:///from-env",
        "STAGINGVM_ACCEL": "auto",
        "STAGINGVM_TIMEOUTS_LEASE": "300",
    }
    loaded = load(env, locations, flags={"uri": ("test:///default", "--uri")})
    s = loaded.settings
    assert s.network.name == "from-system"
    assert s.memory == 1000
    assert s.vcpus == 4
    assert s.accel == "auto"
    assert s.timeouts.lease == 300.0
    assert s.uri == "test:///default"
    src = loaded.sources
    assert src["network.name"] == Source("system file", f"{system}:6")
    assert src["memory"] == Source("system file", f"{system}:1")
    assert src["vcpus"] == Source("user file", f"{xdg / 'stagingvm' / 'config.toml'}:2")
    assert src["accel"] == Source("environment", "STAGINGVM_ACCEL")
    assert src["timeouts.lease"] == Source("environment", "STAGINGVM_TIMEOUTS_LEASE")
    assert src["uri"] == Source("flag", "--uri")
    assert src["pool_name"] == Source("default")
    assert loaded.files == (system, xdg / "stagingvm" / "config.toml")


def test_user_file_under_home_without_xdg(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert user_config_file({"HOME": str(home)}) == home / ".config/stagingvm/config.toml"
    # A relative XDG_CONFIG_HOME is ignored, as the XDG spec says.
    assert user_config_file({"HOME": str(home), "XDG_CONFIG_HOME": "rel"}) == (
        home / ".config/stagingvm/config.toml"
    )
    assert user_config_file({}) is None
    (home / ".config/stagingvm").mkdir(parents=True)
    (home / ".config/stagingvm/config.toml").write_text("vcpus = 6\n")
    loaded = load({"HOME": str(home)}, ConfigLocations(system_file=tmp_path / "none"))
    assert loaded.settings.vcpus == 6
    assert loaded.sources["vcpus"].kind == "user file"


def test_explicit_config_file_replaces_user_file(
    paths: tuple[Path, Path, ConfigLocations], tmp_path: Path
) -> None:
    system, xdg, locations = paths
    system.write_text("memory = 1024\n")
    (xdg / "stagingvm" / "config.toml").write_text("vcpus = 4\n")
    explicit = tmp_path / "ci.toml"
    explicit.write_text("vcpus = 8\n")
    env = {"XDG_CONFIG_HOME": str(xdg)}
    loaded = load(env, locations, config_file=explicit)
    assert loaded.settings.vcpus == 8
    assert loaded.settings.memory == 1024  # the system file is still read
    assert loaded.sources["vcpus"] == Source("config file", f"{explicit}:1")
    assert loaded.files == (system, explicit)
    assert loaded.searched == (system, explicit)  # the user file is not even looked for
    # STAGINGVM_CONFIG does the same; the flag wins over it.
    other = tmp_path / "other.toml"
    other.write_text("vcpus = 5\n")
    assert load({**env, "STAGINGVM_CONFIG": str(other)}, locations).settings.vcpus == 5
    both = load({**env, "STAGINGVM_CONFIG": str(other)}, locations, config_file=explicit)
    assert both.settings.vcpus == 8


def test_explicit_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist") as err:
        load({}, ConfigLocations(system_file=tmp_path / "n"), config_file=tmp_path / "gone.toml")
    assert err.value.exit_code == 2


def test_environment_names_follow_keys() -> None:
    assert env_var_for("uri") == "STAGINGVM_URI"
    assert env_var_for("network.subnet") == "STAGINGVM_NETWORK_SUBNET"
    assert env_var_for("timeouts.lease") == "STAGINGVM_TIMEOUTS_LEASE"
    assert env_var_for("ssh.key") == "STAGINGVM_SSH_KEY"


def test_environment_values_are_parsed_and_paths_resolved(tmp_path: Path) -> None:
    env = {
        "STAGINGVM_SSH_KEY": "keys/id",
        "STAGINGVM_DATA_DIR": "/srv/stagingvm",
        "STAGINGVM_MEMORY": " 4096 ",
        "STAGINGVM_TIMEOUTS_TCG_FACTOR": "2.5",
        "STAGINGVM_NETWORK_SUBNET": "10.99.0.0/24",
    }
    s = load(env, ConfigLocations(system_file=tmp_path / "n")).settings
    assert s.ssh.key == Path("/work/keys/id")
    assert s.ssh_key_path == Path("/work/keys/id")
    assert s.data_dir == Path("/srv/stagingvm")
    assert s.memory == 4096
    assert s.timeouts.tcg_factor == 2.5
    # An empty optional path means "unset".
    s2 = load({"STAGINGVM_SSH_KEY": ""}, ConfigLocations(system_file=tmp_path / "n")).settings
    assert s2.ssh.key is None


def test_flags_resolve_relative_paths_against_cwd(tmp_path: Path) -> None:
    loaded = load(
        {},
        ConfigLocations(system_file=tmp_path / "n"),
        flags={"data_dir": (Path("d"), "--data-dir")},
    )
    assert loaded.settings.data_dir == Path("/work/d")
    assert loaded.sources["data_dir"] == Source("flag", "--data-dir")


def test_unset_flags_do_not_override(tmp_path: Path) -> None:
    loaded = load(
        {"STAGINGVM_URI": "test:///default"},
        ConfigLocations(system_file=tmp_path / "n"),
        flags={"uri": (None, "--uri")},
    )
    assert loaded.settings.uri == "test:///default"
    assert loaded.sources["uri"].kind == "environment"


def test_dhcp_range_follows_a_changed_subnet(tmp_path: Path) -> None:
    loaded = load(
        {"STAGINGVM_NETWORK_SUBNET": "10.20.30.0/24"}, ConfigLocations(system_file=tmp_path / "n")
    )
    net = loaded.settings.network
    assert (net.dhcp_start, net.dhcp_end) == ("10.20.30.10", "10.20.30.254")
    assert loaded.sources["network.dhcp_start"] == Source("derived", "from network.subnet")
    small = load(
        {"STAGINGVM_NETWORK_SUBNET": "10.20.30.0/28"}, ConfigLocations(system_file=tmp_path / "n")
    ).settings.network
    assert (small.dhcp_start, small.dhcp_end) == ("10.20.30.2", "10.20.30.14")


def test_typo_in_environment_is_a_warning(tmp_path: Path) -> None:
    loaded = load(
        {
            "STAGINGVM_TIMEOUT_LEASE": "5",
            "STAGINGVM_MEMROY": "5",
            # Variables of other parts of the project are not typos of settings.
            "STAGINGVM_E2E": "1",
            "STAGINGVM_E2E_URI": "qemu:///system",
            "STAGINGVM_E2E_ACCEL": "tcg",
            "STAGINGVM_LAB_NAMESPACE": "lab",
        },
        ConfigLocations(system_file=tmp_path / "n"),
    )
    assert loaded.warnings == (
        "STAGINGVM_MEMROY is not a setting; did you mean STAGINGVM_MEMORY?",
        "STAGINGVM_TIMEOUT_LEASE is not a setting; did you mean STAGINGVM_TIMEOUTS_LEASE?",
    )
    assert loaded.settings.timeouts.lease == Settings().timeouts.lease


def write_and_load(tmp_path: Path, text: str) -> LoadedSettings:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return load({}, ConfigLocations(system_file=path))


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("uri = 'test:///default'\nmemroy = 4\n", 2, "unknown key 'memroy'"),
        ("[network]\nsubnett = '10.0.0.0/24'\n", 2, "unknown key 'network.subnett'"),
        ("[netwrok]\nname = 'x'\n", 1, "unknown key 'netwrok'"),
        ("vcpus = '2'\n", 1, "vcpus: expected an integer, got a string"),
        ("vcpus = true\n", 1, "vcpus: expected an integer, got a boolean"),
        ("memory = 2048.5\n", 1, "memory: expected an integer, got a number"),
        ("\n\nmemory = 16\n", 3, "memory: 16 is out of range (64..1048576 MiB)"),
        ("vcpus = 0\n", 1, "vcpus: 0 is out of range"),
        ("[timeouts]\nlease = -1\n", 2, "timeouts.lease: -1.0 is out of range"),
        ("[timeouts]\nlease = 'long'\n", 2, "expected a number, got a string"),
        ("[network]\nsubnet = '10.0.0.1/24'\n", 2, "has host bits set; did you mean 10.0.0.0/24?"),
        ("[network]\nsubnet = '10.0.0.0/33'\n", 2, "is not an IPv4 subnet"),
        ("[network]\nsubnet = 'fd00::/64'\n", 2, "is not an IPv4 subnet"),
        ("[network]\nsubnet = '10.0.0.0/30'\n", 2, "too small"),
        ("[network]\ndhcp_start = '10.0.0.300'\n", 2, "is not an IPv4 address"),
        ("[network]\nbridge = 'this-name-is-far-too-long'\n", 2, "bridge name"),
        ("accel = 'fast'\n", 1, "'fast' is not one of auto, kvm, tcg"),
        ("uri = 'no scheme'\n", 1, "not a valid libvirt URI"),
        ("data_dir = 'relative/dir'\n", 1, "is relative"),
        ("[ssh]\nuser = 'Root; rm'\n", 2, "not a valid user name"),
        ("network = 'x'\n", 1, "[network] must be a table"),
        ("network = { subnet = '10.0.0.0/8', nope = 1 }\n", 1, "unknown key 'network.nope'"),
    ],
)
def test_invalid_files_name_file_key_and_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        write_and_load(tmp_path, text)
    assert f"{tmp_path / 'c.toml'}:{line}: " in err.value.message
    assert message in err.value.message
    assert err.value.exit_code == 2


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        write_and_load(tmp_path, "[network]\ndhcpStart = '192.168.150.20'\n")
    assert err.value.hint == "did you mean 'network.dhcp_start'?"


def test_toml_syntax_error_names_the_file_and_position(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        write_and_load(tmp_path, "memory = 2048\nvcpus = = 2\n")
    assert str(tmp_path / "c.toml") in err.value.message
    assert "line 2" in err.value.message


def test_unreadable_bytes_are_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(b"memory = \xff\n")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load({}, ConfigLocations(system_file=path))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STAGINGVM_MEMORY": "lots"}, "STAGINGVM_MEMORY: memory: 'lots' is not an integer"),
        ({"STAGINGVM_VCPUS": "1000"}, "STAGINGVM_VCPUS: vcpus: 1000 is out of range"),
        ({"STAGINGVM_TIMEOUTS_LEASE": "soon"}, "STAGINGVM_TIMEOUTS_LEASE: timeouts.lease"),
        ({"STAGINGVM_NETWORK_SUBNET": "192.168.1.0"}, "has host bits set"),
        ({"STAGINGVM_DATA_DIR": ""}, "STAGINGVM_DATA_DIR: data_dir: an empty path"),
    ],
)
def test_invalid_environment_names_the_variable(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    if "NETWORK_SUBNET" in next(iter(env)):
        message = "STAGINGVM_NETWORK_SUBNET: network.subnet: '192.168.1.0' " + message
    with pytest.raises(ConfigError) as err:
        load(env, ConfigLocations(system_file=tmp_path / "n"))
    assert message in err.value.message


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        (
            "[network]\ndhcp_start = '10.1.1.10'\n",
            {},
            "network.dhcp_start = 10.1.1.10 (system file {f}:2) is outside "
            f"network.subnet = {DEFAULT_SUBNET} (default)",
        ),
        (
            "[network]\ndhcp_end = '192.168.150.255'\n",
            {},
            "is the subnet's broadcast address",
        ),
        (
            "[network]\ndhcp_start = '192.168.150.1'\n",
            {},
            "is the subnet's gateway address",
        ),
        (
            "[network]\ndhcp_start = '192.168.150.200'\ndhcp_end = '192.168.150.100'\n",
            {},
            "network.dhcp_start = 192.168.150.200 (system file {f}:2) comes after "
            "network.dhcp_end = 192.168.150.100 (system file {f}:3)",
        ),
        (
            "[network]\ndhcp_start = '192.168.150.20'\n",
            {"STAGINGVM_NETWORK_SUBNET": "10.5.0.0/16"},
            "network.dhcp_start = 192.168.150.20 (system file {f}:2) is outside "
            "network.subnet = 10.5.0.0/16 (environment STAGINGVM_NETWORK_SUBNET)",
        ),
    ],
)
def test_dhcp_range_must_fit_the_subnet(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load(env, ConfigLocations(system_file=path))
    assert message.format(f=path) in err.value.message
    assert err.value.hint is not None and "dhcp_start" in err.value.hint


def test_typo_distance() -> None:
    assert typo_distance("MEMORY", "MEMORY") == 0
    assert typo_distance("MEMROY", "MEMORY") == 1  # a swap of neighbours is one slip
    assert typo_distance("TIMEOUT_LEASE", "TIMEOUTS_LEASE") == 1
    assert typo_distance("E2E_URI", "URI") == 4
    assert typo_distance("", "ab") == 2


def test_find_key_line_forms() -> None:
    text = (
        "# comment with memory = 1\n"
        "memory = 1\n"
        "ssh.user = 'x'\n"
        '"vcpus" = 2\n'
        "network = { subnet = '10.0.0.0/24' }\n"
        "[ timeouts ]  # comment\n"
        "lease = 3\n"
    )
    assert find_key_line(text, "memory") == 2
    assert find_key_line(text, "ssh.user") == 3
    assert find_key_line(text, "vcpus") == 4
    assert find_key_line(text, "network.subnet") == 5
    assert find_key_line(text, "timeouts") == 6
    assert find_key_line(text, "timeouts.lease") == 7
    assert find_key_line(text, "timeouts.banner") is None


def test_key_table_matches_settings_dataclass() -> None:
    """Every Settings field is a configurable key, with the dataclass's default."""

    def walk(obj: object, prefix: str) -> dict[str, object]:
        out: dict[str, object] = {}
        for f in dataclasses.fields(obj):  # type: ignore[arg-type]
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                out.update(walk(value, f"{prefix}{f.name}."))
            else:
                out[f"{prefix}{f.name}"] = value
        return out

    assert walk(Settings(), "") == {spec.key: spec.default for spec in KEYS}


def test_to_json_lists_every_key_with_source(tmp_path: Path) -> None:
    loaded = load({"STAGINGVM_VCPUS": "3"}, ConfigLocations(system_file=tmp_path / "n"))
    doc = loaded.to_json()
    assert set(doc["settings"]) == {spec.key for spec in KEYS}
    assert doc["settings"]["vcpus"] == {
        "value": 3,
        "source": "environment",
        "detail": "STAGINGVM_VCPUS",
        "env": "STAGINGVM_VCPUS",
    }
    assert doc["settings"]["data_dir"]["value"] == "/var/lib/staging-vm"
    assert doc["settings"]["ssh.key"]["value"] is None
