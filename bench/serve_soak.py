"""A bounded soak of `fieldsync serve` against real servers on loopback: at least 300 runs (or --minutes of them)
while, in turns, commits are pushed and announced by signed webhooks, floods of 100 deliveries arrive at once,
people edit the key by hand (read, change, check-and-set, as a careful client does), Consul restarts (keeping its
data), Prometheus goes down and comes back, and a replica is paused (SIGSTOP, then SIGCONT: `docker pause`, a
cgroup freezer), for 3 s or for longer than the session TTL.

Reported, with targets: tracebacks in the service's log (0); replicas that quit on their own (0); hand edits lost,
i.e. the key going back from a value a person wrote to an earlier one (git's, or an older edit), as a reader
watching it all along saw it, or not holding the last one at the end (0); merged commits reverted, i.e. the key
going back to an older commit at any time, or not holding the last one at the end (0); growth of each replica's RSS
and open descriptors from when it was two minutes old to its end, for replicas that lived six minutes or more
(< 10 MB, ≤ 5).

With two replicas (the default), the leader is also replaced every --kill-every seconds, by SIGTERM and by SIGKILL
in turn, its successor reusing its clone; deliveries go to either replica, as behind a Kubernetes Service.

Usage: .venv/bin/python bench/serve_soak.py [--runs 300 | --minutes 20] [--replicas 2] [--kill-every 240]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import consul as py_consul

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.gitrepo import bare_remote, push, shipped_fields_repo  # noqa: E402
from support.serving import Served, secret_file  # noqa: E402

from fieldsync.localservers import ConsulAgent, Prometheus  # noqa: E402

KEY = "soak/fields"
EDITABLE = ("site", "env", "datacenter", "cluster")  # fields people edit by hand; git edits company


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Sampler(threading.Thread):
    """Every 5 s, each live replica's age, RSS (KiB) and open descriptors."""

    def __init__(self, replicas: Replicas) -> None:
        super().__init__(daemon=True)
        self.replicas, self.stopping = replicas, threading.Event()
        self.samples: dict[int, list[tuple[float, int, int]]] = {}
        self.born: dict[int, float] = {}

    def run(self) -> None:
        while not self.stopping.wait(5):
            for replica in list(self.replicas.slots):
                pid = replica.process.pid
                self.born.setdefault(pid, time.monotonic())
                try:
                    fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
                    sample = (time.monotonic() - self.born[pid], _rss_kib(pid), fds)
                except (OSError, RuntimeError):  # it has just ended
                    continue
                self.samples.setdefault(pid, []).append(sample)

    def growth(self) -> list[tuple[float, float, int]]:
        """(lifetime s, RSS growth MiB, descriptors grown) from age 120 s to the last sample, lived 360 s or more."""
        grown = []
        for samples in self.samples.values():
            warm = [s for s in samples if s[0] >= 120]
            if warm and samples[-1][0] >= 360:
                grown.append((samples[-1][0], (warm[-1][1] - warm[0][1]) / 1024, warm[-1][2] - warm[0][2]))
        return grown


class Watcher(threading.Thread):
    """Reads the key all along and records, in order of appearance, every commit it names and every value of the
    hand-edited attributes."""

    def __init__(self, agent: ConsulAgent) -> None:
        super().__init__(daemon=True)
        self.agent, self.seen, self.stopping = agent, [], threading.Event()
        self.values: dict[str, list[str]] = {field: [] for field in EDITABLE}

    def run(self) -> None:
        client = py_consul.Consul(*self.agent.http_addr.split(":"))
        index = None
        while not self.stopping.is_set():
            try:
                index, item = client.kv.get(KEY, index=index, wait="2s")
            except Exception:  # Consul restarting
                time.sleep(0.2)
                continue
            if item:
                doc = json.loads(item["Value"])
                commit = (doc.get("git") or {}).get("commit")
                if commit and (not self.seen or self.seen[-1] != commit):
                    self.seen.append(commit)
                for record in doc["fields"]:
                    values = self.values.get(record["name"])
                    if values is not None and (not values or values[-1] != record.get("display_name")):
                        values.append(record.get("display_name"))


def hand_edit(agent: ConsulAgent, field: str, value: str) -> bool:
    """Read, change, check-and-set; False when Consul is down or the key changed in between."""
    client = py_consul.Consul(*agent.http_addr.split(":"))
    try:
        index, item = client.kv.get(KEY)
        doc = json.loads(item["Value"])
        for record in doc["fields"]:
            if record["name"] == field:
                record["display_name"] = value
        return bool(client.kv.put(KEY, json.dumps(doc), cas=item["ModifyIndex"]))
    except Exception:
        return False


class Replicas:
    """`fieldsync serve` replicas in slots; a replaced replica reuses its slot's --workdir (its earlier clone)."""

    def __init__(self, count: int, agent: ConsulAgent, args: tuple[str, ...], work: Path) -> None:
        self.agent, self.args, self.work = agent, args, work
        self.slots: list[Served] = []
        self.retired: list[Served] = []
        for slot in range(count):
            self.slots.append(self._spawn(slot))

    def _spawn(self, slot: int) -> Served:
        return Served(self.agent, *self.args, "--workdir", str(self.work / f"clone{slot}"))

    def all(self) -> list[Served]:
        return self.retired + self.slots

    def runs(self) -> list[dict]:
        return [e for r in self.all() for e in r.syncs()]

    def leader(self) -> Served | None:
        for replica in self.slots:
            roles = [e["event"] for e in replica.events if e["event"] in ("leader", "standby", "released")]
            if roles and roles[-1] == "leader":
                return replica
        return None

    def replace_leader(self, how: signal.Signals) -> bool:
        leader = self.leader()
        if leader is None:
            return False
        slot = self.slots.index(leader)
        leader.stop(how)
        self.retired.append(leader)
        self.slots[slot] = self._spawn(slot)
        return True

    def any(self, rng: random.Random) -> Served:
        return rng.choice(self.slots)

    def quit(self) -> list[Served]:
        """Replicas that ended on their own."""
        return [r for r in self.slots if r.process.poll() is not None]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--minutes", type=float, help="run this long instead of --runs runs")
    parser.add_argument("--replicas", type=int, default=2, help="with 2 or more, the leader is replaced now and then "
                                                                  "(SIGTERM and SIGKILL in turn)")
    parser.add_argument("--kill-every", type=float, default=240.0, help="seconds between leader replacements")
    parser.add_argument("--pause-every", type=float, default=60.0, help="seconds between pauses of a replica")
    args = parser.parse_args()
    rng = random.Random(11)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "docs" / "example" / "targets", work / "prom" / "targets")
        config = (ROOT / "docs" / "example" / "prometheus.yml").read_text()
        agent, prom = ConsulAgent(work / "consul", dev=False), Prometheus(work / "prom", config)
        agent.start()
        prom.start()
        repo = shipped_fields_repo(work / "repo")
        remote = bare_remote(work / "remote.git", repo)
        replicas = Replicas(args.replicas, agent, (
            "--git-url", remote, "--key", KEY, "--prometheus", prom.url, "--interval", "2", "--extract-interval", "0.5",
            "--webhook-secret-file", str(secret_file(work))), work)
        watcher = Watcher(agent)
        watcher.start()
        sampler = Sampler(replicas)
        sampler.start()
        pushed: list[str] = []
        edits: dict[str, list[str]] = {field: [] for field in EDITABLE}  # the display_names people wrote, in order
        counts: Counter[str] = Counter()
        answers: Counter[int] = Counter()
        started = time.monotonic()
        last_kill = last_pause = started
        quit_early: list[Served] = []
        try:
            while not replicas.runs():
                time.sleep(0.1)
            step = 0
            while (time.monotonic() - started < args.minutes * 60 if args.minutes else
                   len(replicas.runs()) < args.runs):
                step += 1
                quit_early += [r for r in replicas.quit() if r not in quit_early]
                if time.monotonic() - last_pause >= args.pause_every:  # a replica frozen, then let go on
                    last_pause = time.monotonic()
                    paused, seconds = replicas.any(rng), rng.choice((3, 3, 15))
                    paused.process.send_signal(signal.SIGSTOP)
                    time.sleep(seconds)
                    paused.process.send_signal(signal.SIGCONT)
                    counts[f"pauses of {seconds} s"] += 1
                if args.replicas > 1 and time.monotonic() - last_kill >= args.kill_every:  # the leader replaced
                    last_kill = time.monotonic()
                    how = signal.SIGKILL if counts["leaders killed"] < counts["leaders stopped"] else signal.SIGTERM
                    if replicas.replace_leader(how):
                        counts["leaders killed" if how == signal.SIGKILL else "leaders stopped"] += 1
                action = step % 10
                if action in (0, 5):  # a merged pull request, announced to any replica (as a Service would)
                    repo.write("fields/company.yaml", f"name: company\ndisplay_name: Company v{step}\n")
                    commit = repo.commit(f"step {step}")
                    push(repo)
                    pushed.append(commit)
                    payload = {"ref": "refs/heads/main", "after": commit}
                    answers[replicas.any(rng).deliver(payload, delivery=f"s{step}")[0]] += 1
                    counts["commits pushed"] += 1
                elif action in (1, 3, 7):  # a person edits the key
                    field, value = rng.choice(EDITABLE), f"Hand {step}"
                    if hand_edit(agent, field, value):
                        edits[field].append(value)
                        counts["hand edits made"] += 1
                elif action == 2:  # a flood of 100 deliveries at once
                    payload = {"ref": "refs/heads/main", "after": pushed[-1] if pushed else None}
                    answers.update(replicas.any(rng).flood(payload, name=f"flood{step}"))
                    counts["floods of 100"] += 1
                elif action == 4 and step % 40 == 4:  # Consul restarts, keeping its data
                    agent.stop()
                    time.sleep(2)
                    agent.start()
                    counts["Consul restarts"] += 1
                elif action == 6 and step % 30 == 6:  # Prometheus down for a while
                    prom.stop()
                    time.sleep(3)
                    prom.start()
                    counts["Prometheus down and up"] += 1
                time.sleep(0.3)
            # quiet: let the last commit and edits settle
            last = pushed[-1] if pushed else None
            deadline = time.monotonic() + 120
            client = py_consul.Consul(*agent.http_addr.split(":"))
            while time.monotonic() < deadline:
                doc = json.loads(client.kv.get(KEY)[1]["Value"])
                if (doc.get("git") or {}).get("commit") == last:
                    break
                time.sleep(0.5)
            time.sleep(6)  # a last sample of every replica
            doc = json.loads(client.kv.get(KEY)[1]["Value"])
            quit_early += [r for r in replicas.quit() if r not in quit_early]
        except BaseException:
            for r in replicas.all():  # what the replicas were doing, for the failure's reader
                print(f"--- replica {r.process.pid} (exit code {r.process.poll()}), its last lines:", file=sys.stderr)
                print("".join(r.lines[-25:]), file=sys.stderr)
            raise
        finally:
            watcher.stopping.set()
            sampler.stopping.set()
            codes = [r.stop() for r in replicas.slots]
            prom.stop()
            agent.stop()
        elapsed = time.monotonic() - started
        records = {r["name"]: r for r in doc["fields"]}
        # an edit is lost when the key goes back from it to an earlier value (git's, or an older edit) or does not
        # hold the last one at the end
        lost = 0
        for field, written in edits.items():
            order = {value: n for n, value in enumerate(written)}
            seen = [order.get(v, -1) for v in watcher.values[field]]
            lost += sum(1 for a, b in zip(seen, seen[1:], strict=False) if b < a)
            lost += bool(written) and records[field].get("display_name") != written[-1]
        made = sum(len(v) for v in edits.values())
        order = {c: n for n, c in enumerate(pushed)}
        known = [order[c] for c in watcher.seen if c in order]
        reverted = sum(1 for a, b in zip(known, known[1:], strict=False) if b < a)
        if pushed and (doc.get("git") or {}).get("commit") != pushed[-1]:
            reverted += 1
        outcomes = Counter(e["outcome"] for e in replicas.runs())
        tracebacks = sum(r.log.count("Traceback") for r in replicas.all())
        for replica in replicas.all():  # each in full, for the reader to fix
            at = replica.log.find("Traceback")
            if at >= 0:
                print(f"--- replica {replica.process.pid}, its first traceback:\n{replica.log[at - 500:at + 4000]}")
        growth = sampler.growth()
        print(f"soak: {sum(outcomes.values())} runs in {elapsed:.0f} s with {args.replicas} replica(s): "
              f"{dict(outcomes)}")
        print(f"  events: {dict(counts)}; webhook answers: {dict(answers)}")
        print(f"  exit codes of the replicas on SIGTERM at the end: {codes}")
        print(f"  tracebacks: {tracebacks} (target 0); replicas that quit on their own: {len(quit_early)} (target 0)")
        print(f"  hand edits lost: {lost} of {made} made (the key going back from an edit, or not holding the last "
              "one at the end; target 0)")
        print(f"  commits reverted: {reverted}; commits seen in the key in order: {len(known)} of {len(pushed)} "
              "pushed (target 0 reverted)")
        print("  per replica that lived 6 min or more, from age 2 min to its end: "
              + (", ".join(f"{life / 60:.0f} min: RSS {rss:+.1f} MiB, fds {fds:+d}" for life, rss, fds in growth)
                 or "none lived that long") + " (targets < 10 MB, <= 5)")


if __name__ == "__main__":
    main()
