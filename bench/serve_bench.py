"""`fieldsync serve` against real Consul, Prometheus and a bare git remote on loopback; each figure next to a
baseline measured in the same run:

1. push → signed webhook → the new commit's fields in KV (target: median of 10 ≤ 10 s), next to a one-shot
   `fieldsync sync` of the same kind of change (process start included).
2. a hand edit of the key → reported in the log and in the status key (target: median of 10 ≤ 5 s), next to the
   same one-shot sync.
3. two replicas: the standby's first sync after the leader gets SIGTERM (target ≤ 2 s) and SIGKILL (target: the
   session's TTL + 5 s; the session lives by a TTL check, which fails exactly one TTL after its last pass).
4. an idle leader for 60 s: CPU (target < 1 % of one core, from /proc) and every request it makes of Consul
   (through a recording proxy; target: the passes of its session's check only, the blocking queries staying open).

Usage: .venv/bin/python bench/serve_bench.py [--rounds 10] [--idle 60]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import consul as py_consul

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.gitrepo import GitRepo, bare_remote, push, shipped_fields_repo  # noqa: E402
from support.serving import Served, secret_file  # noqa: E402

from fieldsync.adapters.consul import SESSION_TTL  # noqa: E402
from fieldsync.localservers import ConsulAgent, Prometheus, RecordingProxy  # noqa: E402

BIN = Path(sys.executable).parent / "fieldsync"
TICK = os.sysconf("SC_CLK_TCK")


def _doc(client: py_consul.Consul, key: str) -> dict:
    item = client.kv.get(key)[1]
    return json.loads(item["Value"]) if item else {}


def _until(check, timeout: float = 60, step: float = 0.01) -> float:  # noqa: ANN001 - a callable returning bool
    """monotonic() when `check()` first holds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("timed out")
        time.sleep(step)
    return time.monotonic()


def _one_shot(agent: ConsulAgent, repo: GitRepo, prom: str, key: str) -> float:
    """Seconds for `fieldsync sync` of a new commit, interpreter start included."""
    repo.write("fields/company.yaml", f"name: company\ndisplay_name: One shot {time.time()}\n")
    repo.commit("one-shot change")
    start = time.monotonic()
    subprocess.run([str(BIN), "sync", "--repo", str(repo.path), "--key", key, "--prometheus", prom], check=True,
                   env={**os.environ, "CONSUL_HTTP_ADDR": agent.http_addr}, capture_output=True, timeout=120)
    return time.monotonic() - start


def webhook_latency(agent: ConsulAgent, prom: str, work: Path, rounds: int) -> list[float]:
    client = py_consul.Consul(*agent.http_addr.split(":"))
    repo = shipped_fields_repo(work / "repo")
    remote = bare_remote(work / "remote.git", repo)
    key = "bench/webhook"
    served = Served(agent, "--git-url", remote, "--workdir", str(work / "clone"), "--key", key, "--prometheus", prom,
                    "--interval", "3600", "--webhook-secret-file", str(secret_file(work)))
    times = []
    try:
        served.wait_for(lambda e: e["event"] == "sync")
        for n in range(rounds):
            repo.write("fields/company.yaml", f"name: company\ndisplay_name: Round {n}\n")
            commit = repo.commit(f"round {n}")
            push(repo)
            start = time.monotonic()
            status, _ = served.deliver({"ref": "refs/heads/main", "after": commit}, delivery=f"bench-{n}")
            assert status == 202
            times.append(_until(lambda c=commit: (_doc(client, key).get("git") or {}).get("commit") == c) - start)
    finally:
        served.stop()
    return times


def hand_edit_latency(agent: ConsulAgent, prom: str, work: Path, rounds: int) -> list[float]:
    client = py_consul.Consul(*agent.http_addr.split(":"))
    repo = shipped_fields_repo(work / "repo-edits")
    key = "bench/hand-edit"
    served = Served(agent, "--repo", str(repo.path), "--key", key, "--prometheus", prom, "--interval", "3600")
    times = []
    try:
        served.wait_for(lambda e: e["event"] == "sync")
        for n in range(rounds):
            doc = _doc(client, key)
            for record in doc["fields"]:
                if record["name"] == "company":
                    record["display_name"] = f"Edited {n}"
            mark = len(served.events)
            client.kv.put(key, json.dumps(doc))
            start = time.monotonic()

            def reported(n: int = n, mark: int = mark) -> bool:
                logged = any(e["event"] == "sync" and e.get("hand_edits") for e in served.events[mark:])
                last = _doc(client, f"fieldsync/{key}.status").get("last") or {}
                recorded = any(e["live"] == f"Edited {n}" for e in last.get("hand_edits_kept", []))
                return logged and recorded

            times.append(_until(reported) - start)
    finally:
        served.stop()
    return times


def failover(agent: ConsulAgent, prom: str, work: Path) -> dict[str, float]:
    repo = shipped_fields_repo(work / "repo-failover")
    key = "bench/failover"
    args = ("--repo", str(repo.path), "--key", key, "--prometheus", prom, "--interval", "3600")
    result = {}
    for how in (signal.SIGTERM, signal.SIGKILL):
        replicas = [Served(agent, *args) for _ in range(2)]
        try:
            for r in replicas:
                r.wait_for(lambda e: e["event"] in ("leader", "standby"))
            leader = next(r for r in replicas if any(e["event"] == "leader" for e in r.events))
            other = next(r for r in replicas if r is not leader)
            leader.wait_for(lambda e: e["event"] == "sync")
            mark = len(other.events)
            signalled = time.time()
            leader.stop(how)
            synced = other.wait_for(lambda e: e["event"] == "sync", timeout=120, after=mark)
            at = datetime.fromisoformat(synced["time"].replace("Z", "+00:00")).timestamp()
            result[how.name] = at - signalled
        finally:
            for r in replicas:
                r.stop()
    return result


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def idle(agent: ConsulAgent, prom: str, work: Path, seconds: float) -> tuple[float, dict[str, int], set[str]]:
    repo = shipped_fields_repo(work / "repo-idle")
    remote = bare_remote(work / "remote-idle.git", repo)
    proxy = RecordingProxy(agent.http_addr)
    served = Served(proxy.address, "--git-url", remote, "--workdir", str(work / "clone-idle"), "--key",
                    "bench/idle", "--prometheus", prom)
    try:
        served.wait_for(lambda e: e["event"] == "sync")
        time.sleep(2)
        start, cpu = time.monotonic(), _cpu_seconds(served.process.pid)
        time.sleep(seconds)
        used = _cpu_seconds(served.process.pid) - cpu
        elapsed = time.monotonic() - start
        asked = proxy.since(start)
        watching = {path for at, _, path, query in proxy.requests if at < start and "index" in query}
    finally:
        served.stop()
        proxy.stop()
    kinds: dict[str, int] = {}
    for method, path, query in asked:
        kind = f"{method} {path.rsplit('/', 1)[0] + '/…' if '/check/pass/' in path else path}"
        kinds[kind + (" (blocking)" if "index" in query else "")] = kinds.get(kind, 0) + 1
    return 100 * used / elapsed, kinds, watching


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--idle", type=float, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "docs" / "example" / "targets", work / "prom" / "targets")
        config = (ROOT / "docs" / "example" / "prometheus.yml").read_text()
        with ConsulAgent(work / "consul") as agent, Prometheus(work / "prom", config) as prom:
            baseline_repo = shipped_fields_repo(work / "baseline")
            _one_shot(agent, baseline_repo, prom.url, "bench/baseline")  # warm the caches like the others
            baseline = statistics.median(_one_shot(agent, baseline_repo, prom.url, "bench/baseline")
                                         for _ in range(5))
            print(f"baseline: one-shot `fieldsync sync` of a new commit, median of 5: {baseline:.2f} s")

            hooks = webhook_latency(agent, prom.url, work, args.rounds)
            median = statistics.median(hooks)
            print(f"1. push + webhook -> fields in KV, median of {len(hooks)}: {median:.2f} s "
                  f"(max {max(hooks):.2f} s; {median / baseline:.2f}x the one-shot sync; target <= 10 s)")

            edits = hand_edit_latency(agent, prom.url, work, args.rounds)
            median = statistics.median(edits)
            print(f"2. hand edit -> log line and status key, median of {len(edits)}: {median:.2f} s "
                  f"(max {max(edits):.2f} s; {median / baseline:.2f}x the one-shot sync; target <= 5 s)")

            taken = failover(agent, prom.url, work)
            print(f"3. standby's first sync after the leader's SIGTERM: {taken['SIGTERM']:.2f} s (target <= 2 s); "
                  f"after SIGKILL: {taken['SIGKILL']:.2f} s (session TTL {SESSION_TTL} s; target <= "
                  f"{SESSION_TTL + 5} s)")

            cpu, kinds, watching = idle(agent, prom.url, work, args.idle)
            print(f"4. idle leader over {args.idle:g} s: {cpu:.2f} % of one core (target < 1 %); requests to "
                  f"Consul: {kinds or 'none'}; blocking queries open: {sorted(watching)}")


if __name__ == "__main__":
    main()
