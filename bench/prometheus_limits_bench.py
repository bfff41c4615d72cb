"""Limits on what a Prometheus answer can cost a sync, measured on real loopback HTTP servers, each against a
baseline in the same run:

1. A server that dribbles its answer (1 byte/s): `fieldsync extract` wall time, next to the configured timeout
   (target: timeout + 1 s at most).
2. A 100 MB answer: the peak RSS of `fieldsync extract`, next to its peak RSS reading a small answer (target:
   growth under 30 MB).

Run: .venv/bin/python bench/prometheus_limits_bench.py
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.badhttp import config_answer, dribble, huge, serving  # noqa: E402

BIN = Path(sys.executable).parent / "fieldsync"
TIMEOUT = 3.0


def extract(url: str, work: Path) -> tuple[float, int]:
    """(wall seconds, peak RSS in KiB) of one `fieldsync extract` process."""
    config = work / "fieldsync.yaml"
    config.write_text(f"prometheus:\n  - {{name: bench, url: '{url}', timeout: {TIMEOUT}, retries: 0}}\n")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run([str(BIN), "extract", "--config", str(config)], capture_output=True, timeout=120)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(peak, before)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="fieldsync-limits-bench-"))
    with serving(config_answer) as (small, _):
        base_time, base_rss = extract(small, work)
    with serving(dribble(seconds=600)) as (slow, _):
        slow_time, _ = extract(slow, work)
    with serving(huge(megabytes=100)) as (big, _):
        _, big_rss = extract(big, work)
    print(f"small answer:            {base_time:6.2f} s, peak RSS {base_rss / 1024:6.1f} MiB (baseline)")
    print(f"dribbling server:        {slow_time:6.2f} s with timeout {TIMEOUT:g} s "
          f"(over by {slow_time - TIMEOUT:+.2f} s; target <= +1.0 s)")
    print(f"100 MB answer, refused:  peak RSS {big_rss / 1024:6.1f} MiB, growth {(big_rss - base_rss) / 1024:+.1f} MiB "
          "over the baseline (target < 30 MiB)")


if __name__ == "__main__":
    main()
