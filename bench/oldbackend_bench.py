"""`fieldsync serve` beside the old backend (tests/support/oldbackend.py: its prewarm, empty-key fallback, backup
restore and UI edit as CONTRACT.md describes them) on real Consul, Prometheus and a bare git remote on loopback.
Issue 14's figures, each next to a baseline measured in the same run, a one-shot `fieldsync sync` (process start
included):

1. restarts of the old backend (its prewarm resets field_type, options, icon on extracted fields; every fourth has a
   UI edit land between its read and its write): seconds until the live document holds git's values and every
   pending UI edit again (target ≤ 5 s), and what was lost (target: nothing);
2. wipes of the key with pending UI edits, deleted alone, refilled by the fallback, or restored from backup in turn:
   seconds until rebuilt with every edit (target ≤ 5 s), and what was lost (target: nothing);
3. UI edits on distinct fields, every fourth saved by a second backend process from its stale cache: branches on the
   remote (target: one), edits in the branch's history and in its latest state (target: all).

Usage: .venv/bin/python bench/oldbackend_bench.py [--restarts 20] [--wipes 10] [--edits 10]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support import beside  # noqa: E402
from support.gitrepo import shipped_fields_repo  # noqa: E402

from fieldsync.localservers import ConsulAgent, Prometheus  # noqa: E402

BIN = Path(sys.executable).parent / "fieldsync"


def _one_shot(consul: ConsulAgent, repo: Path, prometheus: str, key: str) -> float:
    started = time.monotonic()
    subprocess.run([str(BIN), "sync", "--repo", str(repo), "--key", key, "--prometheus", prometheus],
                   env={"CONSUL_HTTP_ADDR": consul.http_addr, "PATH": "/usr/bin:/bin"}, check=True,
                   capture_output=True, timeout=120)
    return time.monotonic() - started


def _figures(name: str, rounds: beside.Rounds, baseline: float) -> list[str]:
    done = [s for s in rounds.seconds if s is not None]
    median = statistics.median(done) if done else float("nan")
    return [f"{name}: {len(rounds.seconds)} rounds, {len(done)} settled within {beside.REPAIRED_WITHIN:g} s",
            f"  median {median:.3f} s ({median / baseline:.2f}x the one-shot sync), max "
            f"{max(done) if done else float('nan'):.3f} s",
            f"  values lost: {len(rounds.lost)} {sorted(set(rounds.lost)) if rounds.lost else ''}".rstrip(),
            f"  expected values checked each round: {len(rounds.expected)}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--restarts", type=int, default=20)
    parser.add_argument("--wipes", type=int, default=10)
    parser.add_argument("--edits", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fieldsync-oldbackend-bench-"))
    shutil.copytree(ROOT / "docs" / "example" / "targets", work / "prometheus" / "targets")
    try:
        with ConsulAgent(work / "consul") as consul, \
                Prometheus(work / "prometheus", (ROOT / "docs/example/prometheus.yml").read_text()) as prom:
            lines = []
            repo = shipped_fields_repo(work / "baseline-repo")
            baseline = statistics.median(_one_shot(consul, repo.path, prom.url, f"bench/baseline{n}")
                                         for n in range(5))
            lines.append(f"baseline: one-shot fieldsync sync, median of 5: {baseline:.3f} s")

            for name, scenario in (("restarts", lambda key, backend, served: beside.restarts(
                                        consul, key, backend, args.restarts)),
                                   ("wipes", lambda key, backend, served: beside.wipes(
                                       consul, key, served, backend, args.wipes))):
                repo = shipped_fields_repo(work / f"{name}-repo")
                beside.typed(repo)
                served, backend = beside.started(consul, repo, prom, work / name, f"bench/{name}")
                try:
                    lines += _figures(name, scenario(f"bench/{name}", backend, served), baseline)
                finally:
                    served.stop()

            repo = shipped_fields_repo(work / "branch-repo")
            served, backend = beside.started(consul, repo, prom, work / "branch", "bench/branch",
                                             "--push-hand-edits", "ui-edits")
            try:
                branch = beside.one_branch(consul, "bench/branch", served, backend, work / "branch" / "remote.git",
                                           args.edits)
            finally:
                served.stop()
            lines += [f"UI edits: {args.edits} on distinct fields; branches on the remote: {branch.branches}",
                      f"  the hand-edits branch: {branch.states} states; edits in its history {branch.in_history}, "
                      f"in its latest state {branch.in_latest}"]
            print("\n".join(lines))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
