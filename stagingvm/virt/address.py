"""Find a guest's IPv4 address, trying the cheapest trustworthy source first.

1. ``interfaceAddresses(SRC_LEASE)``: libvirt's view of the network's DHCP leases for this domain.
2. ``network.DHCPLeases()`` filtered by the guest's MAC (the same leases, asked of the network:
   works when the domain's interface has been renamed or the driver cannot map it).
3. ``interfaceAddresses(SRC_AGENT)``: the qemu guest agent, for guests with a static address.
Only addresses of the guest's own MAC count: a foreign interface or lease is never taken.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import libvirt


def _from_interfaces(ifaces: dict[str, Any], mac: str) -> str | None:
    for iface in ifaces.values():
        if str(iface.get("hwaddr", "")).lower() != mac:
            continue
        for addr in iface.get("addrs") or []:
            if addr.get("type") == 0 and not str(addr.get("addr", "")).startswith("127."):
                return str(addr["addr"])
    return None


def from_lease(dom: libvirt.virDomain, mac: str) -> str | None:
    import libvirt

    try:
        ifaces = dom.interfaceAddresses(libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, 0)
    except libvirt.libvirtError:
        return None
    return _from_interfaces(ifaces or {}, mac.lower())


def from_network(network: libvirt.virNetwork | None, mac: str) -> str | None:
    import libvirt

    if network is None:
        return None
    try:
        leases = network.DHCPLeases(mac.lower(), 0)
    except libvirt.libvirtError:
        return None  # not every driver tracks leases (the test driver does not)
    for lease in leases or []:
        if lease.get("type") == 0 and str(lease.get("mac", "")).lower() == mac.lower():
            return str(lease["ipaddr"])
    return None


def network_leases(network: libvirt.virNetwork | None) -> dict[str, str]:
    """MAC (lower case) -> IPv4 of every current lease of *network*, in one call; empty when
    the network or its driver cannot tell (the test driver tracks no leases)."""
    import libvirt

    if network is None:
        return {}
    try:
        leases = network.DHCPLeases(None, 0)
    except libvirt.libvirtError:
        return {}
    return {
        str(lease["mac"]).lower(): str(lease["ipaddr"])
        for lease in leases or []
        if lease.get("type") == 0 and lease.get("mac") and lease.get("ipaddr")
    }


def from_agent(dom: libvirt.virDomain, mac: str) -> str | None:
    import libvirt

    try:
        ifaces = dom.interfaceAddresses(libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT, 0)
    except libvirt.libvirtError:
        return None  # no agent in the guest, or not connected yet
    return _from_interfaces(ifaces or {}, mac.lower())


def lookup_ipv4(
    dom: libvirt.virDomain,
    mac: str,
    network: libvirt.virNetwork | None,
    *,
    use_agent: bool = True,
) -> str | None:
    """The guest's IPv4 address, or None when no source knows it (yet)."""
    return (
        from_lease(dom, mac)
        or from_network(network, mac)
        or (from_agent(dom, mac) if use_agent else None)
    )
