"""The isolated lab: a network namespace running its own virtlogd and libvirtd.

See ``stagingvm.lab.lab`` for why it exists and docs/lab.md for how to use it. Nothing is
imported here: ``pr-test-vm --help`` must stay fast. May import the top-level leaves,
``config`` and ``virt``.
"""
