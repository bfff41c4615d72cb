#!/usr/bin/env bash
# Mutation testing of the pure rules: mutmut mutates rules/{threeway,guards,effective,legacy,merge}.py and runs their
# own unit tests against each mutant, then prints the kill ratio (killed / all mutants that ran). It works on a
# staging copy in .cache/mutation with the package at its top level, which is where mutmut imports mutants from.
# Not part of scripts/test.sh: it takes minutes. Usage: bash scripts/mutation.sh [extra mutmut run arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bash scripts/setup.sh
.venv/bin/python -m pip install --quiet "mutmut==3.8.1"
modules=(threeway guards effective legacy merge)
tests=(tests/test_rules_threeway.py tests/test_rules_guards.py tests/test_merge.py tests/test_document.py)
stage=.cache/mutation
rm -rf "$stage"
mkdir -p "$stage"
cp -r sync/fieldsync "$stage/fieldsync"
cp -r tests schema pyproject.toml "$stage/"
{
  echo "[mutmut]"
  echo "source_paths=fieldsync/"
  echo "only_mutate="
  for m in "${modules[@]}"; do echo "  fieldsync/rules/$m.py"; done
  echo "pytest_add_cli_args_test_selection="
  for t in "${tests[@]}"; do echo "  $t"; done
  echo "pytest_add_cli_args=-p no:cacheprovider"
  echo "also_copy=schema/"
} > "$stage/setup.cfg"
cd "$stage"
"$root/.venv/bin/mutmut" run --max-children 2 "$@" > run.log 2>&1 || { tail -n 30 run.log; exit 1; }
"$root/.venv/bin/mutmut" export-cicd-stats > /dev/null
"$root/.venv/bin/python" - <<'PY'
import json
stats = json.load(open("mutants/mutmut-cicd-stats.json"))
ran = stats["killed"] + stats["survived"] + stats["timeout"] + stats["suspicious"]
print(f"mutants: {stats['total']}, killed {stats['killed']}, survived {stats['survived']}, "
      f"timeout {stats['timeout']}, suspicious {stats['suspicious']}, no tests {stats['no_tests']}, "
      f"skipped {stats['skipped']}")
print(f"kill ratio: {(stats['killed'] + stats['timeout']) / max(ran + stats['no_tests'], 1):.1%} "
      f"(killed or timed out, of every mutant that was generated and not skipped)")
PY
"$root/.venv/bin/mutmut" results | grep -E "survived|no tests" || true
