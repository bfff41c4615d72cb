"""The main job end to end on this machine: a local Consul dev agent and a local Prometheus (docs/example), then
`fieldsync sync` of this repository's fields/ at HEAD, the result read back from Consul, a no-op re-sync, a hand edit
kept (drift: keep), a wiped key rebuilt from git with that edit, an old-backend prewarm repaired, the edit refused
(refuse) and reverted (revert); then the same job
as a service, `fieldsync serve`: readiness, a signed and an unsigned webhook delivery, a hand edit seen at once,
its metrics, and a graceful stop. Servers stop at the end unless --keep is given."""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fieldsync.localservers import ConsulAgent, Prometheus
from fieldsync.rules.legacy import discovered_in

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
        print(f"{'name':<16}{'display_name':<20}{'field_type':<11}{'category':<16}discovered in (as the old UI "
              "computes it from server_status[])")
        found = discovered_in(doc)
        for r in doc["fields"]:
            category = ",".join(r["category"]) if isinstance(r["category"], list) else r["category"]
            print(f"{r['name']:<16}{r['display_name']:<20}{r['field_type']:<11}{category:<16}"
                  f"{','.join(found.get(r['name'], ())) or '-'}")
        print(f"{doc['total_fields']} fields from commit {doc['git']['commit'][:12]}")
        step("sync again: nothing to change, nothing written")
        run(*fieldsync, "sync", "--repo", str(ROOT), "--prometheus", prometheus.url)

        def rewrite(what: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
            doc = json.loads(subprocess.run([*consul_cli, "kv", "get", KEY], env=env, capture_output=True, text=True,
                                            check=True).stdout)
            subprocess.run([*consul_cli, "kv", "put", KEY, "-"], input=json.dumps(change(doc)), env=env, text=True,
                           check=True, capture_output=True)
            print(f"$ consul kv put {KEY} -   # {what}")

        def ui_edit(doc: dict[str, Any]) -> dict[str, Any]:
            doc["fields"][1]["display_name"] = "Edited By Hand"
            return doc

        def prewarm(doc: dict[str, Any]) -> dict[str, Any]:  # CONTRACT.md: what a restart of the old backend does
            inferred_select = ("env", "module", "os", "region", "datacenter")
            for record in doc["fields"]:
                if record["source_label"]:
                    record.update(field_type="select" if record["name"] in inferred_select else "string", options=None)
            return {"data": {**doc, "source": "prewarm_update_with_merge"}, "meta": {"updated_by": "system"}}

        step("a hand edit in KV (as the old UI makes): sync keeps it, pending import into git")
        rewrite("display_name of the second field = 'Edited By Hand'", ui_edit)
        run(*fieldsync, "sync", "--repo", str(ROOT), "--prometheus", prometheus.url)
        run(*fieldsync, "status", "--repo", str(ROOT), "--prometheus", prometheus.url)
        step("wipe the key: sync rebuilds it from git, with the hand edit the run record keeps pending")
        run(*consul_cli, "kv", "delete", KEY)
        run(*fieldsync, "sync", "--repo", str(ROOT), "--prometheus", prometheus.url)
        step("the old backend restarts: its prewarm resets field_type and options; sync repairs them, names the job, "
             "and keeps the hand edit")
        rewrite("what its startup prewarm writes", prewarm)
        run(*fieldsync, "sync", "--repo", str(ROOT), "--prometheus", prometheus.url)
        step("with --drift refuse, sync stops instead and shows what it would overwrite")
        run(*fieldsync, "sync", "--repo", str(ROOT), "--prometheus", prometheus.url, "--drift", "refuse")
        step("let git win on purpose (or take the edit into git with `fieldsync import --from-kv`)")
        run(*fieldsync, "sync", "--repo", str(ROOT), "--prometheus", prometheus.url, "--drift", "revert")
        serve(fieldsync, consul_cli, env, prometheus.url, work)
        if args.keep:
            print(f"\nLeft running: export CONSUL_HTTP_ADDR={consul.http_addr}  (Prometheus at {prometheus.url})")
            return
    finally:
        if not args.keep:
            prometheus.stop()
            consul.stop()
            shutil.rmtree(work, ignore_errors=True)


def _http(url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers or {}), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def serve(fieldsync: list[str], consul_cli: list[str], env: dict[str, str], prometheus: str, work: Path) -> None:
    """`fieldsync serve` on this repository: its log printed as it comes, its endpoint called like GitHub and
    Prometheus would."""
    step("the same job as a service: fieldsync serve (leader election, webhooks, hand edits seen at once)")
    secret = work / "webhook-secret"
    secret.write_text("demo-secret\n")
    cmd = [*fieldsync, "serve", "--repo", str(ROOT), "--prometheus", prometheus, "--listen", "127.0.0.1:0",
           "--webhook-secret-file", str(secret)]
    print("$ fieldsync", " ".join(cmd[1:]), flush=True)
    process = subprocess.Popen(cmd, env=env, text=True, stderr=subprocess.PIPE)
    lines: list[str] = []
    arrived = threading.Condition()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            print("  | " + line.rstrip(), flush=True)
            with arrived:
                lines.append(line)
                arrived.notify_all()

    def wait_for(pattern: str, start: int = 0) -> str:
        with arrived:
            arrived.wait_for(lambda: any(re.search(pattern, x) for x in lines[start:]) or process.poll() is not None,
                             timeout=30)
            found = next((x for x in lines[start:] if re.search(pattern, x)), None)
        if found is None:
            sys.exit(f"demo: fieldsync serve did not log /{pattern}/")
        return found

    threading.Thread(target=read, daemon=True).start()
    try:
        url = "http://" + re.search(r"listen=(\S+)", wait_for(r" started "))[1]  # type: ignore[index]
        wait_for(r" sync ")
        print(f"$ curl {url}/readyz -> {_http(url + '/readyz')}", flush=True)
        body = json.dumps({"ref": "refs/heads/main", "after": "0" * 40}).encode()
        signed = "sha256=" + hmac.new(b"demo-secret", body, hashlib.sha256).hexdigest()
        for name, headers in (("unsigned", {}), ("signed", {"X-Hub-Signature-256": signed})):
            status = _http(url + "/hooks/github", body, {"X-GitHub-Event": "push", **headers})
            print(f"$ POST {url}/hooks/github ({name} push delivery) -> {status}", flush=True)
        time.sleep(0.5)
        mark = len(lines)
        doc = json.loads(subprocess.run([*consul_cli, "kv", "get", KEY], env=env, capture_output=True, text=True,
                                        check=True).stdout)
        doc["fields"][2]["display_name"] = "Edited While Serving"
        subprocess.run([*consul_cli, "kv", "put", KEY, "-"], input=json.dumps(doc), env=env, text=True, check=True,
                       capture_output=True)
        print(f"$ consul kv put {KEY} -   # {doc['fields'][2]['name']}.display_name = 'Edited While Serving'",
              flush=True)
        wait_for(r"trigger=kv", mark)
        metrics = _http(url + "/metrics")[1]
        print(f"$ curl {url}/metrics | grep -v '^#'", flush=True)
        for line in metrics.splitlines():
            if line.startswith("fieldsync_") and "_bucket" not in line:
                print("  " + line, flush=True)
        print("$ kill -TERM <serve>", flush=True)
        process.send_signal(signal.SIGTERM)
        print(f"fieldsync serve exited {process.wait(30)}", flush=True)
    finally:
        if process.poll() is None:
            process.kill()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # the servers were stopped on the way out
        print("\ndemo: interrupted; the servers it started are stopped", file=sys.stderr)
        sys.exit(130)
