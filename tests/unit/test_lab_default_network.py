"""The lab keeps libvirt's own ``default`` network from autostarting (test driver, no daemon)."""

from __future__ import annotations

import libvirt

from stagingvm.lab.lab import keep_default_network_off, network_states


def test_default_network_autostart_is_turned_off() -> None:
    conn = libvirt.open("test:///default")
    try:
        net = conn.networkLookupByName("default")
        net.setAutostart(1)
        assert net.isActive()
        notes = keep_default_network_off(conn, daemon_started=True)
        assert not net.autostart()
        assert not net.isActive()  # the daemon "just started" and had brought it up
        assert len(notes) == 2
        # Second time: nothing to do, nothing said.
        assert keep_default_network_off(conn, daemon_started=True) == []
        states = {n.name: n for n in network_states(conn)}
        assert states["default"].active is False
        assert states["default"].autostart is False
    finally:
        conn.close()


def test_an_adopted_daemons_running_default_network_is_left_alone() -> None:
    conn = libvirt.open("test:///default")
    try:
        net = conn.networkLookupByName("default")
        # test:///default keeps its state while any connection to it is open (another test's
        # cached one, say), so establish the precondition instead of assuming it.
        if not net.isActive():
            net.create()
        net.setAutostart(1)
        notes = keep_default_network_off(conn, daemon_started=False)
        assert not net.autostart()
        assert net.isActive()  # someone else's running network is not stopped
        assert len(notes) == 1
    finally:
        conn.close()
