#!/usr/bin/env bash
# Prepare a fresh machine: a virtualenv in .venv with fieldsync and its test tools, and the consul and
# prometheus binaries in .cache/servers/bin. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -c .github/constraints.txt -e '.[test]'
bash scripts/install-servers.sh >/dev/null
echo "setup: .venv ready; servers in .cache/servers/bin" >&2
