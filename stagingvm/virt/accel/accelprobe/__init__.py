"""The accelerator probe's guest: a multiboot payload assembled from ``probe.S`` (same folder).

The bytes are kept here so that users need no assembler; a unit test reassembles ``probe.S``
with binutils (when installed) and checks that it gives exactly these bytes.
"""

from __future__ import annotations

MARKER = b"STAGINGVM-ACCEL-PROBE-OK"
"""What the payload prints on COM1 once long mode, memory and the CPU-bound loop are done."""

STAGES = {"P": "protected mode", "L": "long mode", "M": "memory touched"}
"""Single letters the payload prints on the way, in this order (for diagnostics)."""

PAYLOAD = bytes.fromhex(
    "02b0ad1b00000100fe4f51e40000100000001000000000000000000020001000fa66baf803b050ee"
    "bf0010100031c0b9000c0000f3abc7050010100003201000c7050020100003301000bf00301000b8"
    "83000000b9200000008907050000200083c708e2f40f20e083c8200f22e0b8001010000f22d8b980"
    "0000c00f320d000100000f300f20c00d010000800f22c00f011518011000ea9d001000080066b810"
    "008ed88ed066baf803b04cee48c7c700002000c607014881c7001000004881ff0000e00372ed66ba"
    "f803b04dee48c7c100c2eb0b4831c04801c848c1c00748ffc975f4488d353400000066baf803ac84"
    "c07403eeebf8faf4ebfc8db600000000000000000000000000000000009a20000000000000920000"
    "1700000110000a53544147494e47564d2d414343454c2d50524f42452d4f4b0a00"
)
