"""``python -m stagingvm``: the same as the ``pr-test-vm`` command."""

from stagingvm.cli.app import main

if __name__ == "__main__":
    main()
