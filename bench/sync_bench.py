"""Sync timings against real servers on loopback.

1. 20 Prometheus endpoints that each answer after 250 ms (loopback servers replaying the response of a real
   Prometheus): wall time of `fieldsync sync`, next to one such endpoint and the serial sum, in the same run.
2. `fieldsync sync` of 300 fields with 3 real Prometheus servers, wall time including interpreter start, next to
   `fieldsync --version` (interpreter and import cost) in the same run.
3. A no-op sync leaves the key's ModifyIndex unchanged.

Usage: python bench/sync_bench.py
"""

from __future__ import annotations

import http.server
import os
import shutil
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import consul
import pygit2

from fieldsync.localservers import ConsulAgent, Prometheus

BIN = Path(sys.executable).parent / "fieldsync"
DELAY = 0.25


class _Replay(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:  # noqa: N802
        time.sleep(DELAY)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def prometheus_config(first: int, count: int, replica: str) -> str:
    rules = "".join(f"      - source_labels: [__meta_consul_service_metadata_f{i}]\n        target_label: f{i}\n"
                    for i in range(first, first + count))
    return (f"global:\n  external_labels: {{replica: {replica}}}\nscrape_configs:\n  - job_name: bench\n"
            f"    static_configs: [{{targets: ['127.0.0.1:9']}}]\n    relabel_configs:\n{rules}")


def make_repo(path: Path, fields: int) -> None:
    (path / "fields").mkdir(parents=True)
    for i in range(fields):
        (path / "fields" / f"f{i}.yaml").write_text(
            f"name: f{i}\ndisplay_name: Field {i}\ncategory: [basic]\norder: {i}\ndescription: bench field {i}\n")
    repo = pygit2.init_repository(str(path), initial_head="main")
    repo.index.add_all()
    repo.index.write()
    who = pygit2.Signature("bench", "bench@example.org")
    repo.create_commit("HEAD", who, who, "bench fields", repo.index.write_tree(), [])


def timed(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{args[:2]} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return elapsed, done.stdout


def best(args: list[str], env: dict[str, str], runs: int = 3, key: str | None = None) -> float:
    """Fastest of `runs`; with `key`, each run writes a fresh key (a real write, lock included)."""
    return min(timed(args + (["--key", f"{key}/{i}"] if key else []), env)[0] for i in range(runs))


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="fieldsync-sync-bench-"))
    servers: list[Prometheus] = []
    agent = ConsulAgent(work / "consul").start()
    try:
        env = {**os.environ, "CONSUL_HTTP_ADDR": agent.http_addr}
        kv = consul.Consul(*agent.http_addr.split(":"))
        for n in range(3):
            servers.append(Prometheus(work / f"prom{n}", prometheus_config(n * 100, 100, f"r{n}")).start())
        make_repo(work / "repo", 300)
        sync = [str(BIN), "sync", "--repo", str(work / "repo")]

        # 1. Slow endpoints replaying a real response.
        with urllib.request.urlopen(f"{servers[0].url}/api/v1/status/config", timeout=10) as response:
            _Replay.body = response.read()
        replays = [_Server(("127.0.0.1", 0), _Replay) for _ in range(20)]
        for server in replays:
            threading.Thread(target=server.serve_forever, daemon=True).start()
        urls = [a for s in replays for a in ("--prometheus", f"http://127.0.0.1:{s.server_address[1]}")]
        one = best([*sync, *urls[:2]], env, key="bench/one")
        twenty = best([*sync, *urls], env, key="bench/twenty")
        for server in replays:
            server.shutdown()
        print(f"20 endpoints x {DELAY * 1000:.0f} ms:  sync {twenty:5.2f} s   (1 endpoint: {one:.2f} s; "
              f"serial would be >= {20 * DELAY:.1f} s; target <= 1.0 s)")

        # 2. 300 fields, 3 real Prometheus servers, whole command.
        three = [a for s in servers for a in ("--prometheus", s.url)]
        startup = best([str(BIN), "--version"], env)
        first, out = timed([*sync, "--key", "bench/three", *three], env)
        assert "written" in out and "300 total" in out, out
        index = kv.kv.get("bench/three")[1]["ModifyIndex"]
        noop = best([*sync, "--key", "bench/three", *three], env)
        after = kv.kv.get("bench/three")[1]["ModifyIndex"]
        print(f"300 fields, 3 Prometheus: first sync {first:5.2f} s, no-op sync {noop:5.2f} s   "
              f"(interpreter + imports alone: {startup:.2f} s; target <= 1.5 s)")
        print(f"no-op sync: ModifyIndex {index} -> {after} ({'unchanged' if index == after else 'CHANGED'})")
    finally:
        for server in servers:
            server.stop()
        agent.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
