"""Validate 10,000 generated field files: cold, re-validated from the blob-id cache, and check-jsonschema.

Usage: python bench/validate_bench.py [--files N] [--skip-check-jsonschema]
All three run in this process's run, on the same files and schema, so their ratio is what to compare.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def write_fields(directory: Path, count: int) -> None:
    directory.mkdir(parents=True)
    for i in range(count):
        select = i % 5 == 0
        (directory / f"field_{i}.yaml").write_text(
            "# yaml-language-server: $schema=../schema/field.schema.json\n"
            f"name: field_{i}\ndisplay_name: Field {i}\n"
            f"field_type: {'select' if select else 'string'}\n"
            f"category: [basic, extra]\norder: {i}\nrequired: {str(i % 2 == 0).lower()}\n"
            f"description: Description of field {i}\nshow_in_table: true\nshow_in_blackbox: false\n"
            'validation:\n  pattern: "^[a-z]+$"\n  max_length: 20\n'
            + ("options: [a, b, c]\n" if select else ""),
            encoding="utf-8",
        )
    hour_ago = time.time() - 3600  # as in a checkout: not written within the last clock tick
    for path in directory.iterdir():
        os.utime(path, (hour_ago, hour_ago))


def timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--skip-check-jsonschema", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fieldsync-bench-"))
    try:
        write_fields(work / "fields", args.files)
        cache = work / "cache"
        validate = [str(BIN / "fieldsync"), "validate", "--cache-dir", str(cache)]
        cold = timed(validate, work)
        warm = timed(validate, work)
        print(f"files: {args.files}")
        print(f"fieldsync validate, cold (no cache):        {cold:6.2f} s   target <= 2.0 s")
        print(f"fieldsync validate, unchanged tree, cached: {warm:6.2f} s   target <= 0.3 s")
        if not args.skip_check_jsonschema:
            files = sorted(str(p) for p in (work / "fields").iterdir())
            schema = str(ROOT / "schema" / "field.schema.json")
            other = timed([str(BIN / "check-jsonschema"), "--schemafile", schema, *files], work)
            print(f"check-jsonschema, same files and schema:    {other:6.2f} s   ({other / cold:.1f}x fieldsync cold)")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
