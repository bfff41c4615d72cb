"""How soon the next sync can run after a sync holding the lock is stopped, on a real Consul and Prometheus:

1. SIGTERM (how systemd, Kubernetes and CI runners stop a job): the lock should be free at once (target: the next
   sync starts within 1 s).
2. SIGKILL (nothing runs on the way out): the lock frees itself when the session's TTL runs out (target: within
   the session TTL, 15 s; Consul may take up to twice the TTL to invalidate a session).

A sync is caught while it holds its lock and frozen (SIGSTOP), then sent the signal and resumed.
Run: .venv/bin/python bench/lock_release_bench.py
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import consul as py_consul

from fieldsync.adapters.consul import SESSION_TTL
from fieldsync.localservers import ConsulAgent, Prometheus

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent / "fieldsync"


def stopped_while_holding(agent: ConsulAgent, prom: Prometheus, key: str, how: signal.Signals) -> float:
    """Seconds from the signal until the lock is free."""
    client = py_consul.Consul(*agent.http_addr.split(":"))
    env = {**os.environ, "CONSUL_HTTP_ADDR": agent.http_addr}
    for attempt in range(50):
        lock = f"fieldsync/{key}/{attempt}.lock"
        process = subprocess.Popen([str(BIN), "sync", "--repo", str(ROOT), "--key", f"{key}/{attempt}",
                                    "--prometheus", prom.url], env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        held = None
        while process.poll() is None and held is None:
            held = (client.kv.get(lock)[1] or {}).get("Session")
        if held is None:
            continue
        os.kill(process.pid, signal.SIGSTOP)
        if (client.kv.get(lock)[1] or {}).get("Session") != held:
            os.kill(process.pid, signal.SIGCONT)
            process.wait(30)
            continue
        start = time.monotonic()
        os.kill(process.pid, how)
        if how != signal.SIGKILL:
            os.kill(process.pid, signal.SIGCONT)
        while (client.kv.get(lock)[1] or {}).get("Session"):
            time.sleep(0.05)
        freed = time.monotonic() - start
        process.wait(30)
        return freed
    raise RuntimeError("no attempt caught a sync holding its lock")


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="fieldsync-lock-bench-"))
    shutil.copytree(ROOT / "docs/example/targets", work / "prometheus/targets")
    with ConsulAgent(work / "consul") as agent, \
            Prometheus(work / "prometheus", (ROOT / "docs/example/prometheus.yml").read_text()) as prom:
        start = time.monotonic()
        subprocess.run([str(BIN), "sync", "--repo", str(ROOT), "--key", "bench/baseline", "--prometheus", prom.url],
                       env={**os.environ, "CONSUL_HTTP_ADDR": agent.http_addr}, capture_output=True, check=True)
        baseline = time.monotonic() - start
        term = stopped_while_holding(agent, prom, "bench/term", signal.SIGTERM)
        kill = stopped_while_holding(agent, prom, "bench/kill", signal.SIGKILL)
    shutil.rmtree(work, ignore_errors=True)
    print(f"one whole sync (baseline):          {baseline:6.2f} s")
    print(f"SIGTERM while holding: lock free in {term:6.2f} s, so the next sync starts within that (target <= 1 s)")
    print(f"SIGKILL while holding: lock free in {kill:6.2f} s (session TTL {SESSION_TTL} s; Consul allows up to 2x)")


if __name__ == "__main__":
    main()
