"""The ``pr-test-vm`` command line: the only part of stagingvm that prints.

The top layer: may import every other package (lazily, for anything ``--help`` must not load).
"""
