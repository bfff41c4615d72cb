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
# The status page is tested in Debian's chromium, driven through its chromedriver (a browser download of a test
# tool's own fails here).
if ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; }
  else
    echo "setup: the browser tests need chromium and chromium-driver: apt-get install chromium chromium-driver" >&2
  fi
fi
echo "setup: .venv ready; servers in .cache/servers/bin" >&2
