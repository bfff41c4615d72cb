#!/usr/bin/env bash
# Fresh machine to a synced Consul KV: set up, start local Consul and Prometheus, sync fields/, show the result.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
