"""Scale: many fields on many servers, slow servers, big answers, steady state and validation, each figure next to a
baseline measured in the same run (machines here are noisy). Real Consul; Prometheus endpoints are loopback HTTP
servers answering /api/v1/status/config as Prometheus does.

1. Fields x servers: the document's size against Consul's 512 KiB limit, and "discovered in" recomputed the old
   system's way from it (every field on every server); sync wall time next to the 100 x 1 sync.
2. Deadline: one server answering 1 byte/s beside a healthy one, default retries: sync wall time next to the
   server's timeout (target: timeout + 2 s at most), and the healthy server's fields written.
3. Memory per MB of answer: the peak RSS of `fieldsync extract` reading a 12 MB config, next to reading a small one
   (target: peak <= 4 x answer + 80 MB); 60,000 plain relabel rules are read, not refused.
4. Steady state: a sync that changes nothing next to a first write, at 500 fields, in one process as serve runs
   them (target: <= 0.85); and as separate `fieldsync sync` processes, for information.
5. validate: warm `--rev HEAD` next to a warm work-tree validate at 5,000 files (target: <= 2), and a warm validate
   next to a cold one at 2,000 files (target: <= 0.4).

Usage: .venv/bin/python bench/scale_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import consul
import pygit2

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.badhttp import config_of, dribble, serving  # noqa: E402
from support.oldbackend import discovered_in  # noqa: E402

from fieldsync.localservers import ConsulAgent  # noqa: E402

BIN = Path(sys.executable).parent / "fieldsync"
LIMIT = 512 * 1024


def prometheus_config(fields: int, site: int, jobs: int = 1, targets: int = 1) -> str:
    """A config whose jobs derive `fields` labels from Consul service metadata, each job with `targets` targets."""
    rules = "".join(f"      - source_labels: [__meta_consul_service_metadata_campo_{n:03d}]\n"
                    f"        target_label: campo_{n:03d}\n" for n in range(fields))
    listed = "".join(f"          - 10.{site}.{t // 250}.{t % 250}:9100\n" for t in range(targets))
    job = ("  - job_name: node_{j}\n    consul_sd_configs: [{{server: 'consul:8500', services: [node_{j}]}}]\n"
           f"    static_configs:\n      - targets:\n{listed}    relabel_configs:\n{rules}")
    return (f"global:\n  external_labels: {{site: site-{site:02d}, datacenter: dc{site % 3}}}\nscrape_configs:\n"
            + "".join(job.format(j=j) for j in range(jobs)))


def make_repo(path: Path, fields: int, servers: list[str] = (), key: str = "bench/fields", **server: object) -> Path:
    (path / "fields").mkdir(parents=True, exist_ok=True)
    for n in range(fields):
        (path / "fields" / f"campo_{n:03d}.yaml").write_text(
            f"name: campo_{n:03d}\ndisplay_name: Campo {n}\ncategory: [basic]\norder: {n}\n"
            f"description: a field of the scale bench\n")
    options = "".join(f", {k}: {v}" for k, v in server.items())
    (path / "fieldsync.yaml").write_text(f"key: {key}\nprometheus:{'' if servers else ' []'}\n" + "".join(
        f"  - {{name: site-{n:02d}, url: '{url}', hostname: 'prometheus-{n:02d}.example.internal'{options}}}\n"
        for n, url in enumerate(servers)))
    repo = pygit2.init_repository(str(path), initial_head="main")
    repo.index.add_all()
    repo.index.write()
    who = pygit2.Signature("bench", "bench@example.org")
    parents = [] if repo.head_is_unborn else [repo.head.target]
    repo.create_commit("HEAD", who, who, "bench", repo.index.write_tree(), parents)
    return path


def run(args: list[str], env: dict[str, str] | None = None, check: bool = True) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([str(BIN), *args], env={**os.environ, **(env or {})}, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if check and done.returncode != 0:
        sys.exit(f"fieldsync {args[0]} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return elapsed, done.stdout + done.stderr


def bare_interpreter() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - start


def peak_rss(args: list[str]) -> float:
    """Peak RSS (MiB) of one fieldsync process (RUSAGE_CHILDREN is the largest child so far: run the small first)."""
    run(args)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


@contextmanager
def endpoints(configs: list[str]) -> Iterator[list[str]]:
    with ExitStack() as stack:
        yield [stack.enter_context(serving(config_of(text)))[0] for text in configs]


def grid(work: Path, agent: ConsulAgent, env: dict[str, str], quick: bool) -> None:
    print("1. fields x servers (real sync; size of the document and the old readers' view of it)")
    baseline = None
    for fields, servers in ([(100, 1), (400, 20)] if quick else [(100, 1), (100, 20), (400, 1), (400, 5), (400, 20)]):
        with endpoints([prometheus_config(fields, s) for s in range(servers)]) as urls:
            key = f"grid/{fields}x{servers}"
            repo = make_repo(work / f"grid-{fields}-{servers}", fields, urls, key)
            elapsed, _ = run(["sync", "--repo", str(repo)], env)
        raw = consul.Consul(host="127.0.0.1", port=int(agent.http_addr.split(":")[1])).kv.get(key)[1]["Value"]
        doc = json.loads(raw)
        entries = doc["extraction_status"]["server_status"]
        everywhere = sum(len(discovered_in(r["name"], entries)) == servers for r in doc["fields"])
        baseline = baseline or elapsed
        print(f"   {fields:>4} fields x {servers:>2} servers: {len(raw):>8,} bytes ({len(raw) / LIMIT:4.0%} of limit), "
              f"discovered on every server: {everywhere}/{len(doc['fields'])}; sync {elapsed:5.2f} s "
              f"({elapsed / baseline:.2f}x the 100 x 1 sync)")


def deadline(work: Path, env: dict[str, str]) -> None:
    timeout = 3
    print(f"2. deadline: a server answering 1 byte/s beside a healthy one (timeout {timeout} s, retries 2)")
    with serving(dribble(seconds=600)) as (slow, seen), endpoints([prometheus_config(50, 1)]) as [healthy]:
        repo = make_repo(work / "deadline", 0, [healthy, slow], "deadline/fields", timeout=timeout, retries=2)
        elapsed, output = run(["sync", "--repo", str(repo)], env)
    written = "written to deadline/fields" in output
    print(f"   sync {elapsed:5.2f} s = timeout + {elapsed - timeout:.2f} s (target <= +2 s); requests to the slow "
          f"server: {len(seen)}; healthy fields written: {written}")


def memory(work: Path, quick: bool) -> None:
    print("3. memory per MB of answer (`fieldsync extract`, peak RSS)")
    with endpoints([prometheus_config(20, 1)]) as [small]:
        base = peak_rss(["extract", "--prometheus", small])
    big_text = prometheus_config(40, 1, jobs=60, targets=7000)  # many jobs, targets and rules: ~12 MB
    answer = len(json.dumps({"status": "success", "data": {"yaml": big_text}})) / 1024 / 1024
    with endpoints([big_text]) as [big]:
        peak = peak_rss(["extract", "--prometheus", big])
    print(f"   small answer: {base:6.1f} MiB (baseline); {answer:.1f} MiB answer: {peak:6.1f} MiB, "
          f"{(peak - base) / answer:.1f} MiB per MiB over the baseline; target <= 4 x answer + 80 = "
          f"{4 * answer + 80:.0f} MiB")
    rules = prometheus_config(60_000, 1).replace("campo_", "rule_")
    with endpoints([rules]) as [plain]:
        elapsed, output = run(["extract", "--prometheus", plain], check=False)
    print(f"   60,000 plain relabel rules ({len(rules) / 1024 / 1024:.1f} MiB): "
          f"{'read' if 'ok, 60000 fields' in output else 'REFUSED: ' + output[-200:]} in {elapsed:.2f} s")


def steady(work: Path, agent: ConsulAgent, rounds: int) -> None:
    """As serve runs syncs: in one process, against the same key; each first write goes to a new key."""
    from fieldsync.adapters.consul import ConsulKV, ConsulSettings
    from fieldsync.usecases import settings
    from fieldsync.usecases.sync import SyncOptions, sync

    print(f"4. steady state at 500 fields, in one process as serve runs them (median of {rounds} pairs)")
    with endpoints([prometheus_config(500, 0)]) as urls:
        repo = make_repo(work / "steady", 500, urls, "steady/fields")
        servers = settings.resolve(repo=str(repo)).servers
        kv = ConsulKV(ConsulSettings.resolve_all({"CONSUL_HTTP_ADDR": agent.http_addr}, None, None, ()))

        def timed(key: str, expected: str) -> float:
            start = time.perf_counter()
            outcome = sync(SyncOptions(repo=str(repo), key=key, servers=servers), kv).outcome
            elapsed = time.perf_counter() - start
            assert outcome == expected, outcome
            return elapsed

        for n in range(3):  # warm: imports, connections, the first parse of the files
            timed(f"steady/warm{n}", "written")
        first, again = [], []
        for n in range(rounds):
            first.append(timed(f"steady/{n}", "written"))
            again.append(timed("steady/warm0", "unchanged"))
    a, b = statistics.median(first), statistics.median(again)
    print(f"   first write {a * 1000:.1f} ms, no-op re-sync {b * 1000:.1f} ms: {b / a:.2f}x (target <= 0.85)")
    with endpoints([prometheus_config(500, 0)]) as urls:
        repo = make_repo(work / "steady-cli", 500, urls, "cli/fields")
        env = {"CONSUL_HTTP_ADDR": agent.http_addr}
        pairs = [(run(["sync", "--repo", str(repo), "--key", f"cli/{n}"], env)[0],
                  run(["sync", "--repo", str(repo), "--key", f"cli/{n}"], env)[0]) for n in range(rounds // 3)]
    a, b = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
    print(f"   as separate `fieldsync sync` processes: first write {a:.3f} s, no-op {b:.3f} s: {b / a:.2f}x")


def validation(work: Path, rounds: int) -> None:
    print(f"5. validate (median of {rounds}, warm = second run with the cache)")
    for files, what in ((5000, "rev"), (2000, "cold")):
        repo = make_repo(work / f"validate-{files}", files)
        cache = ["--cache-dir", str(work / f"cache-{files}")]
        base = ["validate", "--repo", str(repo)]

        def validate(*args: str, base: list[str] = base, files: int = files) -> float:
            elapsed, output = run([*base, *args], check=False)  # 5,000 fields are over Consul's limit: exit 1
            assert f"{files} file(s) checked" in output or f"{files} field file(s) valid" in output, output
            return elapsed

        validate(*cache)
        validate("--rev", "HEAD", *cache)
        worktree = statistics.median(validate(*cache) for _ in range(rounds))
        if what == "rev":
            rev = statistics.median(validate("--rev", "HEAD", *cache) for _ in range(rounds))
            print(f"   {files} files: warm --rev {rev:.3f} s, warm work tree {worktree:.3f} s: {rev / worktree:.2f}x "
                  "(target <= 2)")
        else:
            cold = statistics.median(validate("--no-cache") for _ in range(rounds))
            print(f"   {files} files: warm {worktree:.3f} s, cold {cold:.3f} s: {worktree / cold:.2f}x (target <= 0.4)")
    interpreter = statistics.median(bare_interpreter() for _ in range(rounds))
    repo = work / "validate-2000"
    few = [str(p) for p in sorted((repo / "fields").iterdir())[:3]]
    pre_commit = statistics.median(run(["validate", "--repo", str(repo), "--cache-dir", str(work / "cache-2000"),
                                        *few])[0] for _ in range(rounds))
    print(f"   3 files (pre-commit): {pre_commit:.3f} s, next to the bare interpreter {interpreter:.3f} s "
          f"({pre_commit / interpreter:.1f}x)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer grid points and rounds")
    args = parser.parse_args()
    rounds = 3 if args.quick else 5
    import fieldsync

    compileall.compile_dir(str(Path(fieldsync.__file__).parent), quiet=1)  # as installed: start-up reads no source
    work = Path(tempfile.mkdtemp(prefix="fieldsync-scale-bench-"))
    with ConsulAgent(work / "consul") as agent:
        env = {"CONSUL_HTTP_ADDR": agent.http_addr}
        grid(work, agent, env, args.quick)
        deadline(work, env)
        memory(work, args.quick)
        steady(work, agent, rounds * 3)
        validation(work, rounds)


if __name__ == "__main__":
    main()
