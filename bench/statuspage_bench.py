"""The status page of `fieldsync serve`, measured against a real Consul and a loopback Prometheus endpoint:

1. 400 fields: GET / (the page, rendered by the server) next to GET /metrics in the same run, median of 20, and the
   page's weight (targets: 0.25 s and 300 KB).
2. A hand edit made in KV: how long until it shows on a page open in Debian's chromium, without a reload (median
   and max of 5; target 2 s).

Usage: .venv/bin/python bench/statuspage_bench.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from scale_bench import endpoints, make_repo, prometheus_config  # noqa: E402
from support.browser import browser  # noqa: E402
from support.kv import hand_edit  # noqa: E402
from support.serving import serve_repo  # noqa: E402

from fieldsync.localservers import ConsulAgent  # noqa: E402


def timed_get(url: str) -> tuple[float, int]:
    start = time.perf_counter()
    with urllib.request.urlopen(url) as answer:
        body = answer.read()
    return time.perf_counter() - start, len(body)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="fieldsync-page-bench-"))
    key = "page/fields"
    with ConsulAgent(work / "consul") as agent, endpoints([prometheus_config(400, 0)]) as [prometheus]:
        repo = make_repo(work / "repo", 400, [], key)
        served = serve_repo(agent, repo, prometheus, key)
        try:
            served.wait_ready()
            deadline = time.monotonic() + 60
            while served.get("/")[0] != 200:
                assert time.monotonic() < deadline, served.log
                time.sleep(0.2)
            pages = [timed_get(served.url + "/") for _ in range(20)]
            metrics = [timed_get(served.url + "/metrics") for _ in range(20)]
            page, weight = statistics.median(t for t, _ in pages), pages[-1][1]
            base = statistics.median(t for t, _ in metrics)
            print(f"1. 400 fields: GET / {page * 1000:.1f} ms ({weight / 1024:.0f} KiB), GET /metrics "
                  f"{base * 1000:.1f} ms: {page / base:.1f}x (targets: 250 ms, 300 KB)")
            chromium = browser()
            seen = []
            try:
                chromium.get(served.url + "/")
                chromium.execute_script("window.__mark = 'kept'")
                for n in range(5):
                    hand_edit(agent, key, f"campo_{n:03d}", display_name=f"edited by hand {n}")
                    start = time.monotonic()
                    while f"edited by hand {n}" not in chromium.execute_script(
                            "return document.getElementById('hand-edits').textContent"):
                        assert time.monotonic() - start < 30, "never shown"
                        time.sleep(0.02)
                    seen.append(time.monotonic() - start)
                reloaded = chromium.execute_script("return window.__mark") != "kept"
            finally:
                chromium.quit()
            print(f"2. a hand edit on the open page: median {statistics.median(seen):.2f} s, max {max(seen):.2f} s "
                  f"over {len(seen)} edits (target 2 s); page reloaded: {reloaded}")
        finally:
            served.stop()


if __name__ == "__main__":
    main()
