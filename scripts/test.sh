#!/usr/bin/env bash
# The project's test command: lint, type-check, then every test (unit and end-to-end on real VMs)
# in one pytest run inside the lab's network namespace. Run scripts/setup.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check stagingvm tests benchmarks scripts
.venv/bin/mypy
# The e2e guests are built (or found in their cache) before entering the lab's namespace,
# which cannot reach the Debian mirror.
.venv/bin/python -m tests.e2e.harness
exec .venv/bin/pr-test-vm lab exec -- .venv/bin/python -m pytest tests/unit tests/nix tests/e2e "$@"
