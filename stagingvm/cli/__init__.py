"""The ``pr-test-vm`` command line: the only part of stagingvm that prints."""
