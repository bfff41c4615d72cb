"""The main job end to end on this machine: a local Consul dev agent and a local Prometheus (docs/example), then
`fieldsync sync` of this repository's fields/ at HEAD, the result read back from Consul, a no-op re-sync, a wiped
key rebuilt from git, and a hand edit kept (drift: keep), refused (refuse) and reverted (revert). Servers stop at
the end unless --keep is given."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from fieldsync.localservers import ConsulAgent, Prometheus

ROOT = Path(__file__).resolve().parents[1]
KEY = "skills/eye/metadata/fields"


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="leave Consul and Prometheus running")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fieldsync-demo-"))
    shutil.copytree(ROOT / "docs" / "example" / "targets", work / "prometheus" / "targets")
    consul = ConsulAgent(work / "consul")
    prometheus = Prometheus(work / "prometheus", (ROOT / "docs" / "example" / "prometheus.yml").read_text())
    env = {**os.environ, "CONSUL_HTTP_ADDR": consul.http_addr}
    fieldsync = [str(Path(sys.executable).parent / "fieldsync")]
    consul_cli = [shutil.which("consul") or str(ROOT / ".cache" / "servers" / "bin" / "consul")]

    def run(*cmd: str) -> subprocess.CompletedProcess[str]:
        print("$", " ".join(Path(cmd[0]).name if i == 0 else c for i, c in enumerate(cmd)), flush=True)
        done = subprocess.run(cmd, env=env, text=True, capture_output=True)
        print((done.stdout + done.stderr).rstrip(), flush=True)
        return done

    try:
        consul.start()
        prometheus.start()
        print(f"Consul {consul.http_addr}, Prometheus {prometheus.url} (logs in {work})")
        step("validate the field files")
        run(*fieldsync, "validate", "--repo", str(ROOT), "--no-cache")
        step("what Prometheus yields")
        run(*fieldsync, "extract", "--prometheus", prometheus.url)
        step("sync fields/ at HEAD to Consul KV")
        if run(*fieldsync, "sync", "--repo", str(ROOT), "--prometheus", prometheus.url).returncode != 0:
            sys.exit(1)
        step(f"the document in Consul ({KEY})")
        raw = subprocess.run([*consul_cli, "kv", "get", KEY], env=env, capture_output=True, text=True, check=True)
        doc = json.loads(raw.stdout)
        print(f"{'name':<16}{'display_name':<20}{'field_type':<11}{'category':<16}discovered_in")
        for r in doc["fields"]:
            category = ",".join(r["category"]) if isinstance(r["category"], list) else r["category"]
            print(f"{r['name']:<16}{r['display_name']:<20}{r['field_type']:<11}{category:<16}"
                  f"{','.join(r['discovered_in']) or '-'}")
        print(f"{doc['total_fields']} fields from commit {doc['git']['commit'][:12]}")
        step("sync again: nothing to change, nothing written")
        run(*fieldsync, "sync", "--repo", str(ROOT), "--prometheus", prometheus.url)
        step("wipe the key, then rebuild it from git")
        run(*consul_cli, "kv", "delete", KEY)
        run(*fieldsync, "sync", "--repo", str(ROOT), "--prometheus", prometheus.url)
        step("a hand edit in KV (as the old UI makes): sync keeps it, pending import into git")
        doc = json.loads(subprocess.run([*consul_cli, "kv", "get", KEY], env=env, capture_output=True, text=True,
                                        check=True).stdout)
        doc["fields"][1]["display_name"] = "Edited By Hand"
        subprocess.run([*consul_cli, "kv", "put", KEY, "-"], input=json.dumps(doc), env=env, text=True, check=True,
                       capture_output=True)
        print(f"$ consul kv put {KEY} -   # {doc['fields'][1]['name']}.display_name = 'Edited By Hand'")
        run(*fieldsync, "sync", "--repo", str(ROOT), "--prometheus", prometheus.url)
        run(*fieldsync, "status", "--repo", str(ROOT), "--prometheus", prometheus.url)
        step("with --drift refuse, sync stops instead and shows what it would overwrite")
        run(*fieldsync, "sync", "--repo", str(ROOT), "--prometheus", prometheus.url, "--drift", "refuse")
        step("let git win on purpose (or take the edit into git with `fieldsync import --from-kv`)")
        run(*fieldsync, "sync", "--repo", str(ROOT), "--prometheus", prometheus.url, "--drift", "revert")
        if args.keep:
            print(f"\nLeft running: export CONSUL_HTTP_ADDR={consul.http_addr}  (Prometheus at {prometheus.url})")
            return
    finally:
        if not args.keep:
            prometheus.stop()
            consul.stop()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # the servers were stopped on the way out
        print("\ndemo: interrupted; the servers it started are stopped", file=sys.stderr)
        sys.exit(130)
