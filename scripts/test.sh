#!/usr/bin/env bash
# The project's test command: lint, type-check, then every test (unit and end-to-end on real VMs)
# in one pytest run inside the lab's network namespace. Run scripts/setup.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check stagingvm tests benchmarks scripts
.venv/bin/mypy
exec .venv/bin/pr-test-vm lab exec -- .venv/bin/python -m pytest tests "$@"
