#!/usr/bin/env bash
# Set up (if needed) and run every check: ruff, the layer contracts (import-linter), mypy, actionlint, the field
# files themselves, and the test suite against real Consul and Prometheus servers started on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check sync tests bench
.venv/bin/lint-imports --no-cache
.venv/bin/mypy
.venv/bin/actionlint .github/workflows/*.yml
.venv/bin/fieldsync validate --no-cache
status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "test.sh: pytest collected no tests; that is a failure" >&2
fi
exit "$status"
