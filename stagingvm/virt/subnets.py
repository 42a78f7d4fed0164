"""Refuse a subnet that would collide with another libvirt network or a host route.

Two NAT networks on one subnet cannot both be active, and a subnet that is already routed on the
host makes the VMs unreachable (or, worse, shadows a real network). So before stagingvm defines
or starts its network it checks the wanted subnet against every other libvirt network and the
host's IPv4 routes (``/proc/net/route``: no ``ip`` binary needed). The routes are those of the
network namespace stagingvm runs in; a libvirtd in another namespace has its own.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from stagingvm.errors import ConflictError
from stagingvm.virt import xmlrender

PROC_ROUTE = Path("/proc/net/route")


@dataclass(frozen=True)
class Route:
    interface: str
    network: ipaddress.IPv4Network


def _hex_to_ip(field: str) -> ipaddress.IPv4Address:
    # /proc/net/route prints addresses as host-order (little-endian on x86) 32-bit hex.
    return ipaddress.IPv4Address(socket.inet_ntoa(struct.pack("=I", int(field, 16))))


def host_routes(path: Path = PROC_ROUTE) -> list[Route]:
    """The host's IPv4 routes, default routes left out (they overlap everything by design)."""
    try:
        lines = path.read_text(encoding="ascii", errors="replace").splitlines()
    except OSError:
        return []
    routes: list[Route] = []
    for line in lines[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            dest = _hex_to_ip(fields[1])
            mask = _hex_to_ip(fields[7])
            net = ipaddress.IPv4Network(f"{dest}/{mask}", strict=False)
        except ValueError:
            continue
        if net.prefixlen == 0:
            continue
        routes.append(Route(fields[0], net))
    return routes


def network_subnets(network_xml: str) -> list[ipaddress.IPv4Network]:
    """The IPv4 subnets of one libvirt network definition."""
    root = xmlrender.parse(network_xml)
    subnets: list[ipaddress.IPv4Network] = []
    for ip in root.findall("ip"):
        if ip.get("family", "ipv4") != "ipv4" or ip.get("address") is None:
            continue
        mask = ip.get("netmask") or ip.get("prefix") or "24"
        try:
            subnets.append(ipaddress.IPv4Network(f"{ip.get('address')}/{mask}", strict=False))
        except ValueError:
            continue
    return subnets


def check_overlap(
    wanted: ipaddress.IPv4Network,
    *,
    networks: Iterable[tuple[str, str]],
    routes: Iterable[Route],
    own_bridge: str,
) -> None:
    """Raise ConflictError if *wanted* overlaps another network or a host route.

    *networks* are (name, XML) of the OTHER libvirt networks; routes through *own_bridge*
    (stagingvm's own network, already up) are skipped.
    """
    for name, xml in networks:
        for subnet in network_subnets(xml):
            if subnet.overlaps(wanted):
                raise ConflictError(
                    f"subnet {wanted} overlaps libvirt network {name!r} ({subnet})",
                    hint="choose another subnet (setting network.subnet, with dhcp_start/dhcp_end)"
                    f" or remove network {name!r}",
                )
    for route in routes:
        if route.interface == own_bridge:
            continue
        if route.network.overlaps(wanted):
            raise ConflictError(
                f"subnet {wanted} overlaps the host route {route.network} on {route.interface}",
                hint="choose another subnet (setting network.subnet, with dhcp_start/dhcp_end)",
            )
