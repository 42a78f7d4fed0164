"""stagingvm's NAT network: ensure it exists, report drift, manage DHCP host entries.

A DHCP host entry (MAC -> IP, named for the VM) is added for every VM through
``virNetworkUpdate`` on the live network and its persistent config at once, so a VM rebuilt
with the same MAC gets the same address, and a VM's entry can be found (and removed) by name
even when its domain is already gone.
"""

from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from stagingvm.errors import ConfigError, ConflictError, NotFoundError
from stagingvm.progress import NULL_PROGRESS, Progress
from stagingvm.settings import NetworkSettings
from stagingvm.virt import xmlrender
from stagingvm.virt.connection import lookup_or_none
from stagingvm.virt.subnets import PROC_ROUTE, check_overlap, host_routes

if TYPE_CHECKING:
    import libvirt


@dataclass(frozen=True)
class Layout:
    """The checked addresses of the network: subnet, gateway (the host side) and DHCP range."""

    subnet: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address
    dhcp_start: ipaddress.IPv4Address
    dhcp_end: ipaddress.IPv4Address


@dataclass(frozen=True)
class DhcpHost:
    mac: str
    ip: str
    name: str | None


def layout(net: NetworkSettings) -> Layout:
    """Parse and check the network settings; ConfigError explains what is wrong."""
    try:
        subnet = ipaddress.IPv4Network(net.subnet, strict=True)
        start = ipaddress.IPv4Address(net.dhcp_start)
        end = ipaddress.IPv4Address(net.dhcp_end)
    except ValueError as exc:
        raise ConfigError(f"invalid network setting: {exc}") from exc
    if subnet.num_addresses < 8:
        raise ConfigError(f"subnet {subnet} is too small", hint="use a /29 or larger")
    gateway = next(subnet.hosts())
    for what, addr in (("dhcp_start", start), ("dhcp_end", end)):
        if addr not in subnet or addr in (subnet.network_address, subnet.broadcast_address):
            raise ConfigError(f"network.{what} {addr} is not a host address of {subnet}")
    if not gateway < start <= end:
        raise ConfigError(
            f"DHCP range {start}-{end} must be ordered and above the gateway {gateway}"
        )
    return Layout(subnet, gateway, start, end)


def render_network(net: NetworkSettings) -> str:
    """The network's XML from ``xml/network.xml``."""
    lay = layout(net)
    root = xmlrender.load_template("network")
    xmlrender.set_text(root, "name", net.name)
    xmlrender.set_attrs(root, "bridge", name=net.bridge)
    xmlrender.set_attrs(root, "ip", address=str(lay.gateway), netmask=str(lay.subnet.netmask))
    xmlrender.set_attrs(root, "ip/dhcp/range", start=str(lay.dhcp_start), end=str(lay.dhcp_end))
    return xmlrender.to_xml(root)


def _summary(xml: str) -> dict[str, str]:
    """The parts of a network definition stagingvm cares about, normalized for comparison."""
    root = xmlrender.parse(xml)
    out: dict[str, str] = {}
    forward = root.find("forward")
    out["forward mode"] = forward.get("mode", "nat") if forward is not None else "none (isolated)"
    bridge = root.find("bridge")
    out["bridge"] = (bridge.get("name") if bridge is not None else None) or "?"
    ip = root.find("ip")
    if ip is not None:
        mask = ip.get("netmask") or ip.get("prefix") or "?"
        try:
            iface = ipaddress.IPv4Interface(f"{ip.get('address')}/{mask}")
            out["address"] = str(iface)
        except ValueError:
            out["address"] = f"{ip.get('address')}/{mask}"
        rng = ip.find("dhcp/range")
        if rng is not None:
            out["DHCP range"] = f"{rng.get('start')}-{rng.get('end')}"
    return out


def drift(wanted_xml: str, existing_xml: str) -> list[str]:
    """Differences between the wanted and an existing definition, one line each."""
    wanted, found = _summary(wanted_xml), _summary(existing_xml)
    return [
        f"{key}: wanted {wanted.get(key, '-')}, found {found.get(key, '-')}"
        for key in wanted.keys() | found.keys()
        if wanted.get(key) != found.get(key)
    ]


def lookup(conn: libvirt.virConnect, name: str) -> libvirt.virNetwork | None:
    return lookup_or_none(conn.networkLookupByName, name, "VIR_ERR_NO_NETWORK")


def _persistent_xml(network: libvirt.virNetwork) -> str:
    import libvirt

    try:
        return str(network.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE))
    except libvirt.libvirtError:
        return str(network.XMLDesc(0))  # drivers without the flag (the test driver)


def _check_subnet(
    conn: libvirt.virConnect,
    net: NetworkSettings,
    subnet: ipaddress.IPv4Network,
    *,
    active_only: bool,
    routes_path: Path,
) -> None:
    others = [
        (other.name(), str(other.XMLDesc(0)))
        for other in conn.listAllNetworks()
        if other.name() != net.name and (other.isActive() or not active_only)
    ]
    check_overlap(subnet, networks=others, routes=host_routes(routes_path), own_bridge=net.bridge)


def ensure_network(
    conn: libvirt.virConnect,
    net: NetworkSettings,
    *,
    progress: Progress = NULL_PROGRESS,
    routes_path: Path = PROC_ROUTE,
) -> list[str]:
    """Define (if missing), start (if inactive) and autostart the network.

    Returns the drift between the wanted and an existing definition (also reported through
    ``progress.note``); an existing network is never redefined behind the user's back.
    Raises ConflictError before defining a subnet that overlaps another network or a route.
    """
    wanted = render_network(net)
    network = lookup(conn, net.name)
    differences: list[str] = []
    if network is None:
        _check_subnet(conn, net, layout(net).subnet, active_only=False, routes_path=routes_path)
        with progress.phase(f"defining network {net.name}"):
            network = conn.networkDefineXML(wanted)
    else:
        differences = drift(wanted, _persistent_xml(network))
        for line in differences:
            progress.note(f"network {net.name} differs from the settings: {line}")
    if not network.isActive():
        # The subnet it is defined with, which may have drifted from the settings.
        subnet = (defined_layout(network) or layout(net)).subnet
        _check_subnet(conn, net, subnet, active_only=True, routes_path=routes_path)
        with progress.phase(f"starting network {net.name}"):
            network.create()
    if not network.autostart():
        network.setAutostart(1)
    return differences


def defined_layout(network: libvirt.virNetwork) -> Layout | None:
    """The addresses the network really has (they win over settings that drifted from them)."""
    root = xmlrender.parse(_persistent_xml(network))
    ip = root.find("ip")
    rng = root.find("ip/dhcp/range")
    if ip is None or rng is None:
        return None
    try:
        iface = ipaddress.IPv4Interface(
            f"{ip.get('address')}/{ip.get('netmask') or ip.get('prefix')}"
        )
        return Layout(
            iface.network,
            iface.ip,
            ipaddress.IPv4Address(rng.get("start", "")),
            ipaddress.IPv4Address(rng.get("end", "")),
        )
    except ValueError:
        return None


def dhcp_hosts(network: libvirt.virNetwork) -> list[DhcpHost]:
    root = xmlrender.parse(_persistent_xml(network))
    return [
        DhcpHost(h.get("mac", "").lower(), h.get("ip", ""), h.get("name"))
        for h in root.findall("ip/dhcp/host")
        if h.get("mac") and h.get("ip")
    ]


def new_mac(network: libvirt.virNetwork) -> str:
    """A random MAC in QEMU's 52:54:00 range that no host entry of *network* uses."""
    import secrets  # hmac and hashlib behind it: only when a VM is made

    taken = {host.mac for host in dhcp_hosts(network)}
    while True:
        mac = "52:54:00:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3))
        if mac not in taken:
            return mac


def _update_flags(network: libvirt.virNetwork) -> int:
    import libvirt

    flags = libvirt.VIR_NETWORK_UPDATE_AFFECT_CONFIG
    if network.isActive():
        flags |= libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE
    return int(flags)


def _host_xml(host: DhcpHost) -> str:
    element = ET.Element("host", {"mac": host.mac, "ip": host.ip})
    if host.name:
        element.set("name", host.name)
    return ET.tostring(element, encoding="unicode")


def _leased_ips(network: libvirt.virNetwork, *, except_mac: str | None = None) -> set[str]:
    """Addresses dnsmasq has leased, leaving out the leases of *except_mac*.

    A rebuilt VM keeps its MAC: its own old lease (dnsmasq keeps it until it expires) must not
    count as someone else's.
    """
    import libvirt

    try:
        leases = network.DHCPLeases()
    except libvirt.libvirtError:
        return set()  # drivers without lease tracking (the test driver)
    return {
        str(lease["ipaddr"])
        for lease in leases
        if except_mac is None or str(lease.get("mac", "")).lower() != except_mac
    }


def add_dhcp_host(
    network: libvirt.virNetwork,
    net: NetworkSettings,
    *,
    mac: str,
    name: str,
    ip: str | None = None,
) -> str:
    """Reserve an address for *mac* (the given *ip*, else the lowest free one in the range).

    Call under the host lock: two callers must not pick the same address. Returns the IP.
    """
    import libvirt

    lay = defined_layout(network) or layout(net)
    hosts = dhcp_hosts(network)
    mac = mac.lower()
    for host in hosts:
        if host.mac == mac or host.name == name:
            if host.mac == mac and host.name == name and (ip is None or host.ip == ip):
                return host.ip  # already reserved for this VM (a rebuild, a retry)
            raise ConflictError(
                f"network {net.name} already has a DHCP host entry for {host.name or host.mac}"
                f" ({host.mac} -> {host.ip})",
                hint=f"destroy the VM that owns it, or remove it: "
                f'`virsh net-update {net.name} delete ip-dhcp-host "{_host_xml(host)}" '
                "--live --config`",
            )
    taken = {host.ip for host in hosts} | _leased_ips(network, except_mac=mac) | {str(lay.gateway)}
    if ip is None:
        ip = next(
            (str(addr) for addr in _range(lay.dhcp_start, lay.dhcp_end) if str(addr) not in taken),
            None,
        )
        if ip is None:
            raise ConflictError(f"no free address left in the DHCP range of {net.name}")
    elif ip in taken:
        raise ConflictError(f"address {ip} is already in use on network {net.name}")
    entry = DhcpHost(mac, ip, name)
    network.update(
        libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST,
        libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST,
        -1,
        _host_xml(entry),
        _update_flags(network),
    )
    return ip


def _range(
    start: ipaddress.IPv4Address, end: ipaddress.IPv4Address
) -> Iterator[ipaddress.IPv4Address]:
    return (ipaddress.IPv4Address(i) for i in range(int(start), int(end) + 1))


def remove_dhcp_host(
    network: libvirt.virNetwork, *, name: str | None = None, mac: str | None = None
) -> DhcpHost | None:
    """Remove the entry named *name* or for *mac*; returns what was removed (None: nothing)."""
    import libvirt

    mac = mac.lower() if mac else None
    for host in dhcp_hosts(network):
        if (name is not None and host.name == name) or (mac is not None and host.mac == mac):
            network.update(
                libvirt.VIR_NETWORK_UPDATE_COMMAND_DELETE,
                libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST,
                -1,
                _host_xml(host),
                _update_flags(network),
            )
            return host
    return None


def require(conn: libvirt.virConnect, name: str) -> libvirt.virNetwork:
    network = lookup(conn, name)
    if network is None:
        raise NotFoundError(
            f"libvirt network {name!r} does not exist", hint="`pr-test-vm start` creates it"
        )
    return network
