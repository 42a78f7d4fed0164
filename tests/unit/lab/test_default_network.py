"""The lab keeps libvirt's own ``default`` network from autostarting (test driver, no daemon).

``test:///default`` is one shared state per process: each test sets the network up as it
needs it and puts it back (active, no autostart) afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import libvirt
import pytest

from stagingvm.lab.lab import keep_default_network_off, network_states


@pytest.fixture
def default_net() -> Iterator[libvirt.virNetwork]:
    conn = libvirt.open("test:///default")
    net = conn.networkLookupByName("default")
    if not net.isActive():
        net.create()
    net.setAutostart(1)
    try:
        yield net
    finally:
        if not net.isActive():
            net.create()
        net.setAutostart(0)
        conn.close()


def test_default_network_autostart_is_turned_off(default_net: libvirt.virNetwork) -> None:
    conn = default_net.connect()
    notes = keep_default_network_off(conn, daemon_started=True)
    assert not default_net.autostart()
    assert not default_net.isActive()  # the daemon "just started" and had brought it up
    assert len(notes) == 2
    # Second time: nothing to do, nothing said.
    assert keep_default_network_off(conn, daemon_started=True) == []
    states = {n.name: n for n in network_states(conn)}
    assert states["default"].active is False
    assert states["default"].autostart is False


def test_an_adopted_daemons_running_default_network_is_left_alone(
    default_net: libvirt.virNetwork,
) -> None:
    notes = keep_default_network_off(default_net.connect(), daemon_started=False)
    assert not default_net.autostart()
    assert default_net.isActive()  # someone else's running network is not stopped
    assert len(notes) == 1
