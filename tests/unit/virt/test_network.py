"""The staging network: subnet checks, drift, DHCP host entries (on the test driver)."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from stagingvm.errors import ConfigError, ConflictError
from stagingvm.progress import NullProgress
from stagingvm.settings import NetworkSettings
from stagingvm.virt import network
from stagingvm.virt.subnets import host_routes


class Notes(NullProgress):
    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, message: str) -> None:
        self.notes.append(message)


def test_routes_are_parsed_without_the_default_route(routes_file: Path) -> None:
    routes = host_routes(routes_file)
    assert [(r.interface, str(r.network)) for r in routes] == [("eth0", "10.20.0.0/16")]
    assert host_routes(routes_file.parent / "missing") == []


def test_ensure_defines_starts_and_autostarts(conn: Any, routes_file: Path) -> None:
    assert network.ensure_network(conn, NetworkSettings(), routes_path=routes_file) == []
    net = conn.networkLookupByName("staging")
    assert net.isActive() and net.autostart()
    # Idempotent: a second call changes nothing and reports no drift.
    assert network.ensure_network(conn, NetworkSettings(), routes_path=routes_file) == []
    assert sorted(n.name() for n in conn.listAllNetworks()) == ["foreign-net", "staging"]


def test_ensure_starts_an_inactive_network(conn: Any, routes_file: Path) -> None:
    network.ensure_network(conn, NetworkSettings(), routes_path=routes_file)
    net = conn.networkLookupByName("staging")
    net.destroy()
    network.ensure_network(conn, NetworkSettings(), routes_path=routes_file)
    assert net.isActive()


def test_overlap_with_another_libvirt_network_is_refused(conn: Any, routes_file: Path) -> None:
    clash = NetworkSettings(
        subnet="192.168.122.0/25", dhcp_start="192.168.122.10", dhcp_end="192.168.122.100"
    )
    with pytest.raises(ConflictError, match="foreign-net") as err:
        network.ensure_network(conn, clash, routes_path=routes_file)
    assert err.value.hint and "subnet" in err.value.hint
    assert network.lookup(conn, "staging") is None  # nothing defined


def test_overlap_with_a_host_route_is_refused(conn: Any, routes_file: Path) -> None:
    clash = NetworkSettings(subnet="10.20.5.0/24", dhcp_start="10.20.5.10", dhcp_end="10.20.5.20")
    with pytest.raises(ConflictError, match=r"host route 10\.20\.0\.0/16 on eth0"):
        network.ensure_network(conn, clash, routes_path=routes_file)
    assert network.lookup(conn, "staging") is None


def test_routes_of_our_own_bridge_are_not_a_conflict(conn: Any, tmp_path: Path) -> None:
    route = tmp_path / "route"
    route.write_text(
        "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
        "virbr-staging\t0096A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    )
    assert host_routes(route)[0].network == ipaddress.IPv4Network("192.168.150.0/24")
    network.ensure_network(conn, NetworkSettings(), routes_path=route)
    assert conn.networkLookupByName("staging").isActive()


def test_drift_is_reported_not_fixed(conn: Any, routes_file: Path) -> None:
    network.ensure_network(conn, NetworkSettings(), routes_path=routes_file)
    notes = Notes()
    changed = replace(NetworkSettings(), bridge="virbr-other", dhcp_end="192.168.150.99")
    drift = network.ensure_network(conn, changed, progress=notes, routes_path=routes_file)
    assert sorted(drift) == [
        "DHCP range: wanted 192.168.150.10-192.168.150.99, found 192.168.150.10-192.168.150.254",
        "bridge: wanted virbr-other, found virbr-staging",
    ]
    assert len(notes.notes) == 2 and all("differs from the settings" in n for n in notes.notes)
    assert "virbr-staging" in conn.networkLookupByName("staging").XMLDesc(0)  # unchanged


@pytest.mark.parametrize(
    "kwargs",
    [
        {"subnet": "192.168.150.0/33"},
        {"subnet": "192.168.150.1/24"},  # host bits set
        {"dhcp_start": "192.168.151.10"},
        {"dhcp_start": "192.168.150.1"},  # the gateway
        {"dhcp_start": "192.168.150.200", "dhcp_end": "192.168.150.100"},
        {"subnet": "192.168.150.0/30", "dhcp_start": "192.168.150.2", "dhcp_end": "192.168.150.2"},
    ],
)
def test_bad_network_settings(kwargs: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        network.render_network(replace(NetworkSettings(), **kwargs))


def test_dhcp_host_entries(conn: Any, routes_file: Path) -> None:
    settings = NetworkSettings()
    network.ensure_network(conn, settings, routes_path=routes_file)
    net = conn.networkLookupByName("staging")
    ip1 = network.add_dhcp_host(net, settings, mac="52:54:00:00:00:01", name="a")
    ip2 = network.add_dhcp_host(net, settings, mac="52:54:00:00:00:02", name="b")
    assert (ip1, ip2) == ("192.168.150.10", "192.168.150.11")
    # Re-adding the same reservation is a no-op; a clash is refused.
    assert network.add_dhcp_host(net, settings, mac="52:54:00:00:00:01", name="a") == ip1
    with pytest.raises(ConflictError, match="already has a DHCP host entry"):
        network.add_dhcp_host(net, settings, mac="52:54:00:00:00:09", name="a")
    with pytest.raises(ConflictError, match="already in use"):
        network.add_dhcp_host(net, settings, mac="52:54:00:00:00:03", name="c", ip=ip2)
    removed = network.remove_dhcp_host(net, name="a")
    assert removed is not None and removed.ip == ip1
    assert [h.name for h in network.dhcp_hosts(net)] == ["b"]
    # The freed address is handed out again, and an explicit one is honoured.
    assert network.add_dhcp_host(net, settings, mac="52:54:00:00:00:04", name="d") == ip1
    assert (
        network.add_dhcp_host(net, settings, mac="52:54:00:00:00:05", name="e", ip="192.168.150.50")
        == "192.168.150.50"
    )
    assert network.remove_dhcp_host(net, name="nobody") is None


def test_full_range_is_a_conflict(conn: Any, routes_file: Path) -> None:
    settings = NetworkSettings(dhcp_start="192.168.150.10", dhcp_end="192.168.150.11")
    network.ensure_network(conn, settings, routes_path=routes_file)
    net = conn.networkLookupByName("staging")
    network.add_dhcp_host(net, settings, mac="52:54:00:00:00:01", name="a")
    network.add_dhcp_host(net, settings, mac="52:54:00:00:00:02", name="b")
    with pytest.raises(ConflictError, match="no free address"):
        network.add_dhcp_host(net, settings, mac="52:54:00:00:00:03", name="c")


def test_addresses_come_from_the_network_as_defined(conn: Any, routes_file: Path) -> None:
    """Settings that drifted from the defined network must not pick addresses outside it."""
    network.ensure_network(conn, NetworkSettings(), routes_path=routes_file)
    net = conn.networkLookupByName("staging")
    drifted = NetworkSettings(
        subnet="192.168.160.0/24", dhcp_start="192.168.160.10", dhcp_end="192.168.160.20"
    )
    assert network.add_dhcp_host(net, drifted, mac="52:54:00:00:00:01", name="a") == (
        "192.168.150.10"
    )


def test_network_leases_say_nothing_where_the_driver_tracks_none(
    conn: Any, routes_file: Path
) -> None:
    """`list` asks the network for every lease at once; the test driver keeps none, so the
    answer is empty and each VM's own lease lookup is used instead (real leases are compared
    with `list` in tests/e2e/test_lifecycle.py::test_status_and_list_agree_with_libvirt)."""
    from stagingvm.virt.address import network_leases

    network.ensure_network(conn, NetworkSettings(), routes_path=routes_file)
    assert network_leases(conn.networkLookupByName("staging")) == {}
    assert network_leases(None) == {}
