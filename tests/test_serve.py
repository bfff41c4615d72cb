"""`fieldsync serve` against real Consul, real Prometheus, a real bare git remote and real HTTP."""

from __future__ import annotations

import json
import signal
import time
import urllib.parse
import urllib.request
from pathlib import Path

from support import kv
from support.commands import customize_company
from support.githttp import git_over_http
from support.gitrepo import GitRepo, bare_remote, push
from support.kv import MASTER_TOKEN, acl_token
from support.serving import Served, secret_file, serve_clone, serve_repo

from fieldsync.adapters.consul import SESSION_TTL
from fieldsync.localservers import ConsulAgent, Prometheus, RecordingProxy, refused_address


def test_a_signed_push_delivery_syncs_the_new_commit_and_a_bad_one_is_refused(
        consul: ConsulAgent, example_prometheus: Prometheus, field_repo: GitRepo, tmp_path: Path) -> None:
    key = "serve/webhook"
    remote = bare_remote(tmp_path / "remote.git", field_repo)
    served = serve_clone(consul, remote, tmp_path / "work", example_prometheus.url, key, secret=secret_file(tmp_path))
    try:
        first = served.wait_for(lambda e: e["event"] == "sync")
        assert first["outcome"] == "written" and first["trigger"] == "leader", served.log
        commit = customize_company(field_repo)
        push(field_repo)
        payload = {"ref": "refs/heads/main", "after": commit}

        assert served.deliver(payload, secret="wrong")[0] == 401
        assert served.deliver(payload, secret=None)[0] == 401
        assert served.deliver({"zen": "hi"}, event="ping")[0] == 200
        assert kv.records(consul, key)["company"].get("display_name") != "Empresa"

        mark = len(served.events)
        status, text = served.deliver(payload)
        assert status == 202, text
        synced = served.wait_for(lambda e: e["event"] == "sync" and e["commit"] == commit, after=mark)
        assert synced["outcome"] == "written" and "webhook" in synced["trigger"], served.log
        assert kv.records(consul, key)["company"]["display_name"] == "Empresa"
        assert served.metric("fieldsync_webhook_deliveries_total", result="rejected") == 2
        assert served.metric("fieldsync_webhook_deliveries_total", result="accepted") == 2
    finally:
        assert served.stop(signal.SIGTERM) == 0, served.log
    assert "Traceback" not in served.log


def test_a_hand_edit_is_reported_at_once_and_pushed_for_review(
        consul: ConsulAgent, example_prometheus: Prometheus, field_repo: GitRepo, tmp_path: Path) -> None:
    key = "serve/hand-edit"
    remote = bare_remote(tmp_path / "remote.git", field_repo)
    served = serve_clone(consul, remote, tmp_path / "work", example_prometheus.url, key, "--push-hand-edits",
                         "hand-edits")
    try:
        served.wait_for(lambda e: e["event"] == "sync")
        assert served.metric("fieldsync_drift_events_total") == 0
        mark = len(served.events)
        kv.hand_edit(consul, key, "company", display_name="Cliente")

        seen = served.wait_for(lambda e: e["event"] == "sync", after=mark)
        assert seen["trigger"] == "kv" and seen["hand_edits"] == 1 and seen["fields_changed"] == 0, served.log
        assert served.metric("fieldsync_hand_edits_pending") == 1
        assert served.metric("fieldsync_drift_events_total") == 1
        kept = kv.run_record(consul, key)["last"]["hand_edits_kept"]
        assert [(e["field"], e["attribute"], e["live"]) for e in kept] == [("company", "display_name", "Cliente")]
        assert kv.records(consul, key)["company"]["display_name"] == "Cliente"  # keep: the edit stays

        pushed = served.wait_for(lambda e: e["event"] == "push", after=mark)
        assert pushed["outcome"] == "committed" and pushed["branch"] == "hand-edits", served.log
        branch = GitRepo.open(tmp_path / "remote.git").repo.branches["hand-edits"]
        company = branch.peel().tree["fields/company.yaml"].data.decode()
        assert "display_name: Cliente" in company
    finally:
        assert served.stop() == 0, served.log


def test_two_replicas_elect_one_leader_that_hands_over_on_sigterm_and_on_sigkill(
        consul: ConsulAgent, example_prometheus: Prometheus, field_repo: GitRepo, tmp_path: Path) -> None:
    key = "serve/replicas"
    remote = bare_remote(tmp_path / "remote.git", field_repo)
    replicas = [serve_clone(consul, remote, tmp_path / f"work{n}", example_prometheus.url, key,
                       secret=secret_file(tmp_path)) for n in range(3)]
    try:
        leader = _new_leader(replicas, [0, 0, 0])
        leader.wait_for(lambda e: e["event"] == "sync")
        mark = len(leader.events)
        standby = next(r for r in replicas if r is not leader)
        assert standby.deliver({"ref": "refs/heads/main", "after": "0" * 40}) == (202, "passed on to the leader\n")
        assert "webhook" in leader.wait_for(lambda e: e["event"] == "sync", after=mark)["trigger"], leader.log

        marks = [len(r.events) for r in replicas]
        assert leader.stop(signal.SIGTERM) == 0, leader.log
        second = _new_leader(replicas, marks)
        synced = second.wait_for(lambda e: e["event"] == "sync", after=marks[replicas.index(second)])
        assert synced["outcome"] == "unchanged", second.log

        marks = [len(r.events) for r in replicas]
        second.stop(signal.SIGKILL)
        third = _new_leader(replicas, marks)
        assert third.wait_for(lambda e: e["event"] == "sync", after=marks[replicas.index(third)])["outcome"] == \
            "unchanged"
    finally:
        for replica in replicas:
            replica.stop()
    assert not any("Traceback" in r.log for r in replicas)


def _new_leader(replicas: list[Served], marks: list[int], timeout: float = 60) -> Served:
    """The replica that becomes the leader after the given log positions; every other live one reports standby."""
    deadline = time.monotonic() + timeout
    while True:
        leaders = [r for r, mark in zip(replicas, marks, strict=True)
                   if any(e["event"] == "leader" for e in r.events[mark:])]
        if leaders:
            break
        assert time.monotonic() < deadline, [r.log for r in replicas]
        time.sleep(0.1)
    assert len(leaders) == 1, [r.log for r in replicas]
    for replica in replicas:
        if replica.process.poll() is None:
            replica.wait_for(lambda e: e["event"] in ("leader", "standby"))
            expected = (1.0, "leader") if replica is leaders[0] else (0.0, "standby")
            assert (replica.metric("fieldsync_leader"), replica.get("/readyz")[1].strip()) == expected, replica.log
    return leaders[0]


SERIES = ("fieldsync_sync_runs_total", "fieldsync_sync_duration_seconds_bucket",
          "fieldsync_last_success_timestamp_seconds", "fieldsync_commits_behind", "fieldsync_hand_edits_pending",
          "fieldsync_prometheus_up", "fieldsync_leader", "fieldsync_webhook_deliveries_total",
          "fieldsync_drift_events_total", "fieldsync_conflicts", "fieldsync_job_rewrites_repaired_total",
          "fieldsync_build_info")


def test_a_real_prometheus_scrapes_the_series_and_loads_the_alerting_rules(
        consul: ConsulAgent, example_prometheus: Prometheus, start_prometheus, field_repo: GitRepo,  # noqa: ANN001
        tmp_path: Path) -> None:
    rules = Path(__file__).resolve().parents[1] / "docs" / "monitoring" / "fieldsync-alerts.yml"
    served = Served(consul, "--repo", str(field_repo.path), "--key", "serve/scraped", "--prometheus",
                    example_prometheus.url, "--webhook-secret-file", str(secret_file(tmp_path)))
    try:
        served.wait_for(lambda e: e["event"] == "sync")
        target = served.url.split("//")[1]
        scraper = start_prometheus(
            f"global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: ['{rules}']\n"
            f"scrape_configs:\n  - job_name: fieldsync\n    static_configs: [{{targets: ['{target}']}}]\n")
        deadline = time.monotonic() + 60
        missing: list[str] = list(SERIES)
        while missing and time.monotonic() < deadline:
            missing = [name for name in SERIES if not _query(scraper.url, f'{name}{{job="fieldsync"}}')]
            time.sleep(0.5)
        assert not missing, served.log
        assert _query(scraper.url, 'fieldsync_leader{job="fieldsync"}')[0]["value"][1] == "1"
        assert _query(scraper.url, 'fieldsync_sync_runs_total{job="fieldsync",outcome="written"}')[0]["value"][1] == "1"
        groups = json.loads(_get(f"{scraper.url}/api/v1/rules"))["data"]["groups"]
        assert {r["name"] for g in groups for r in g["rules"]} >= {"FieldsyncSyncFailing", "FieldsyncNoLeader"}
        assert all(r["health"] != "err" for g in groups for r in g["rules"]), groups
    finally:
        assert served.stop() == 0, served.log


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read().decode("utf-8")


def _query(prometheus: str, expression: str) -> list[dict]:
    return json.loads(_get(f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expression})}"))["data"][
        "result"]


def _configure(repo: GitRepo, prometheus: Prometheus, key: str, drift: str = "keep", commit: bool = True) -> None:
    """A fieldsync.yaml naming the key, the drift policy and the server (committed, unless not)."""
    repo.write("fieldsync.yaml", f"key: {key}\ndrift: {drift}\nprometheus: [{{name: a, url: '{prometheus.url}'}}]\n")
    if commit:
        repo.commit(f"config: {key}, {drift}")


def test_sighup_reads_the_config_again(consul: ConsulAgent, example_prometheus: Prometheus,
                                       field_repo: GitRepo) -> None:
    key = "serve/reload"
    _configure(field_repo, example_prometheus, key)
    served = Served(consul, "--repo", str(field_repo.path), "--interval", "3600")
    try:
        served.wait_for(lambda e: e["event"] == "sync")
        mark = len(served.events)
        kv.hand_edit(consul, key, "company", display_name="Cliente")
        served.wait_for(lambda e: e["event"] == "sync" and e["hand_edits"] == 1, after=mark)
        assert kv.records(consul, key)["company"]["display_name"] == "Cliente"

        _configure(field_repo, example_prometheus, key, "revert", commit=False)  # the same commit: SIGHUP reads it
        mark = len(served.events)
        served.process.send_signal(signal.SIGHUP)
        reverted = served.wait_for(lambda e: e["event"] == "sync", after=mark)
        assert reverted["trigger"] == "reload" and reverted["overwritten"] == 1, served.log
        assert kv.records(consul, key)["company"].get("display_name") != "Cliente"
    finally:
        assert served.stop() == 0, served.log


def test_an_idle_leader_asks_consul_only_for_its_blocking_queries_and_keepalives(
        consul: ConsulAgent, example_prometheus: Prometheus, field_repo: GitRepo, tmp_path: Path) -> None:
    key = "serve/idle"
    proxy = RecordingProxy(consul.http_addr)
    remote = bare_remote(tmp_path / "remote.git", field_repo)
    served = serve_clone(proxy.address, remote, tmp_path / "work", example_prometheus.url, key, "--interval", "1")
    try:
        served.wait_for(lambda e: e["event"] == "sync")
        time.sleep(1)  # the watches settle on their index
        start = time.monotonic()
        time.sleep(SESSION_TTL)  # a whole TTL: three keepalives, and ten fetches that find nothing new
        asked = proxy.since(start)
        watching = {path for at, method, path, query in proxy.requests if at < start and "index" in query}
    finally:
        assert served.stop() == 0, served.log
        proxy.stop()
    kinds = {(method, path.rsplit("/", 1)[0] if "/check/pass/" in path else path, "index" in query)
             for method, path, query in asked}
    assert kinds == {("PUT", "/v1/agent/check/pass", False)}, asked  # the session's keepalive
    assert watching == {f"/v1/kv/{key}", f"/v1/kv/fieldsync/{key}.nudge",  # the blocking queries, still open
                        f"/v1/kv/fieldsync/{key}.leader"}
    assert [e for e in served.events if e["event"] == "sync"][1:] == [], served.log  # no run: nothing changed


SERVE_POLICY = """
key "acl/served" { policy = "write" }
key "fieldsync/acl/served.lock" { policy = "write" }
key "fieldsync/acl/served.status" { policy = "write" }
key "fieldsync/acl/served.leader" { policy = "write" }
key "fieldsync/acl/served.nudge" { policy = "write" }
session_prefix "" { policy = "write" }
service "fieldsync-replica" { policy = "write" }
"""


def test_serve_needs_only_its_acl_policy_and_says_what_is_denied(start_consul, example_prometheus: Prometheus,  # noqa: ANN001
                                                                  field_repo: GitRepo) -> None:
    agent = start_consul(acl_master_token=MASTER_TOKEN)
    token = acl_token(agent, "fieldsync-serve", SERVE_POLICY)
    lacking = {"watching fieldsync/acl/served.leader": SERVE_POLICY.replace(".leader", ".other"),
               "registering the service fieldsync-replica": SERVE_POLICY.replace('"fieldsync-replica"', '"other"')}
    args = ("--repo", str(field_repo.path), "--key", "acl/served", "--prometheus", example_prometheus.url)
    served = Served(agent, *args, env={"CONSUL_HTTP_TOKEN": token})
    denied = {what: Served(agent, *args, env={"CONSUL_HTTP_TOKEN": acl_token(agent, f"lacks-{n}", rules)})
              for n, (what, rules) in enumerate(lacking.items())}
    try:
        assert served.wait_for(lambda e: e["event"] == "sync")["outcome"] == "written", served.log
        for what, replica in denied.items():
            problem = replica.wait_for(lambda e: e["event"] == "problem" and e["source"] == "election")
            assert f"Consul denied {what}" in problem["error"], replica.log
            status, reason = replica.get("/readyz")
            assert status == 503 and reason == "Consul denies a request: check the token's policy\n", reason
    finally:
        assert [r.stop() for r in (served, *denied.values())] == [0, 0, 0], served.log


def test_the_service_rides_out_prometheus_and_consul_going_down(start_consul, start_prometheus,  # noqa: ANN001
                                                               example_config: str, field_repo: GitRepo) -> None:
    agent = start_consul(dev=False)  # keeps KV across the restart
    prom = start_prometheus(example_config)
    key = "serve/faults"
    served = Served(agent, "--repo", str(field_repo.path), "--key", key, "--prometheus", prom.url,
                    "--interval", "2")
    try:
        served.wait_for(lambda e: e["event"] == "sync")
        prom.stop()
        mark = len(served.events)
        kv.hand_edit(agent, key, "company", display_name="Cliente")
        failed = served.wait_for(lambda e: e["event"] == "sync", after=mark)
        assert failed["outcome"] == "failed" and "nothing written" in failed["error"], served.log
        prom.start()
        recovered = served.wait_for(lambda e: e["event"] == "sync" and e["outcome"] != "failed", after=mark)
        assert "retry" in recovered["trigger"] and recovered["hand_edits"] == 1, served.log

        agent.stop()
        served.wait_for(lambda e: e["event"] == "problem", after=mark)
        assert served.get("/readyz") == (503, "Consul does not answer\n") and served.get("/healthz")[0] == 200
        agent.start()
        served.wait_ready()
        assert kv.records(agent, key)["company"]["display_name"] == "Cliente"
        mark = len(served.events)
        kv.hand_edit(agent, key, "site", display_name="Sitio")  # watched again
        served.wait_for(lambda e: e["event"] == "sync" and e.get("hand_edits") == 2, after=mark)
        assert served.wait_ready() == "leader"
    finally:
        assert served.stop() == 0, served.log
    assert "Traceback" not in served.log


def test_a_flood_of_deliveries_is_answered_in_full_and_coalesced(
        consul: ConsulAgent, example_prometheus: Prometheus, field_repo: GitRepo, tmp_path: Path) -> None:
    served = serve_repo(consul, field_repo.path, example_prometheus.url, "serve/flood", secret=secret_file(tmp_path))
    try:
        served.wait_for(lambda e: e["event"] == "sync")
        mark = len(served.events)
        assert served.flood({"ref": "refs/heads/main", "after": "0" * 40}) == [202] * 100
        served.wait_for(lambda e: e["event"] == "sync", after=mark)
        assert served.wait_ready() == "leader"
        assert served.metric("fieldsync_webhook_deliveries_total", result="accepted") == 100
        assert len(served.syncs(mark)) < 50, served.log  # one run per delivery would be 100
    finally:
        assert served.stop() == 0, served.log


def test_failing_runs_back_off_whatever_triggers_them(consul: ConsulAgent, field_repo: GitRepo) -> None:
    with refused_address() as nowhere:
        served = Served(consul, "--repo", str(field_repo.path), "--key", "serve/backoff", "--prometheus",
                        f"http://{nowhere}", "--extract-interval", "0.2", "--interval", "0.5")
        try:
            served.wait_for(lambda e: e["event"] == "sync" and e.get("retry_in_s", 0) >= 4)  # 1, 2, 4: backing off
            failed = served.syncs()
        finally:
            assert served.stop() == 0, served.log
    assert [e["outcome"] for e in failed] == ["failed"] * 3, served.log  # not one run per extract interval
    assert [e["retry_in_s"] for e in failed] == [1.0, 2.0, 4.0]


def test_a_later_commit_naming_another_key_is_reported(consul: ConsulAgent, example_prometheus: Prometheus,
                                                      field_repo: GitRepo) -> None:
    _configure(field_repo, example_prometheus, "serve/first")
    served = Served(consul, "--repo", str(field_repo.path), "--interval", "3600")
    try:
        served.wait_for(lambda e: e["event"] == "sync")
        _configure(field_repo, example_prometheus, "serve/second")
        served.process.send_signal(signal.SIGHUP)
        warned = served.wait_for(lambda e: e["event"] == "config")
        assert "until the service restarts" in warned["error"]
        served.wait_for(lambda e: e["event"] == "sync" and e["trigger"] == "reload")
        assert kv.live(consul, "serve/second")[0] is not None  # the run used the new key
    finally:
        assert served.stop() == 0, served.log


def test_sigterm_during_a_run_gives_up_before_the_write_and_releases_the_locks(
        consul: ConsulAgent, example_prometheus: Prometheus, field_repo: GitRepo) -> None:
    key = "serve/sigterm"
    served = Served(consul, "--repo", str(field_repo.path), "--key", key, "--prometheus", example_prometheus.url,
                    "--interval", "3600", "--grace", "30")
    client = kv.client(consul)
    lock = f"{kv.STATE_PREFIX}{key}.lock"
    try:
        served.wait_for(lambda e: e["event"] == "sync")
        before = kv.live(consul, key)
        other = client.session.create(ttl=10, behavior="delete", lock_delay=0)
        assert client.kv.put(lock, "another sync", acquire=other)  # a concurrent one-shot sync holds the lock
        customize_company(field_repo)
        served.process.send_signal(signal.SIGHUP)
        served.wait_for(lambda e: e["event"] == "waiting")  # the run waits for the lock
        served.process.send_signal(signal.SIGTERM)
        client.session.destroy(other)  # the lock is free: the run takes it, then gives up before writing
        assert served.process.wait(30) == 0, served.log
    finally:
        served.stop()
    abandoned = served.wait_for(lambda e: e["event"] == "sync" and e["outcome"] == "abandoned")
    assert "nothing written" in abandoned["error"]
    assert kv.live(consul, key) == before
    assert client.kv.get(lock)[1] is None and client.kv.get(f"{kv.STATE_PREFIX}{key}.leader")[1] is None
    assert served.events[-1]["event"] == "stopped"


def test_an_http_remote_is_read_with_the_token_file_and_a_wrong_token_is_a_clear_error(
        consul: ConsulAgent, example_prometheus: Prometheus, field_repo: GitRepo, tmp_path: Path) -> None:
    bare_remote(tmp_path / "remotes" / "fields.git", field_repo)
    good, bad = tmp_path / "token", tmp_path / "wrong-token"
    good.write_text("s3cr3t-token\n")
    bad.write_text("guess\n")
    with git_over_http(tmp_path / "remotes", "s3cr3t-token") as base:
        url = f"{base}/fields.git"
        served = serve_clone(consul, url, tmp_path / "work", example_prometheus.url, "serve/http",
                             "--git-token-file", str(good), "--push-hand-edits", "ui-edits")
        refused = serve_clone(consul, url, tmp_path / "work2", example_prometheus.url, "serve/http2",
                              "--git-token-file", str(bad))
        try:
            assert served.wait_for(lambda e: e["event"] == "sync")["outcome"] == "written", served.log
            kv.hand_edit(consul, "serve/http", "company", display_name="Cliente")
            pushed = served.wait_for(lambda e: e["event"] == "push")
            assert pushed["outcome"] == "committed", served.log  # pushed over HTTP with the token
            assert "ui-edits" in GitRepo.open(tmp_path / "remotes" / "fields.git").repo.branches
            failed = refused.wait_for(lambda e: e["event"] == "fetch")
            assert url in failed["error"] and "refused the credentials" in failed["error"], refused.log
            status, reason = refused.get("/readyz")
            assert (status, reason) == (503, "no commit fetched yet\n"), reason
        finally:
            assert served.stop() == 0 and refused.stop() == 0
    assert "Traceback" not in served.log + refused.log


def test_the_config_is_read_from_the_fetched_commit(consul: ConsulAgent, example_prometheus: Prometheus,
                                                    field_repo: GitRepo, tmp_path: Path) -> None:
    _configure(field_repo, example_prometheus, "serve/committed")
    remote = bare_remote(tmp_path / "remote.git", field_repo)
    (field_repo.path / "fieldsync.yaml").unlink()  # not on any disk the service reads: only in the commit
    served = Served(consul, "--git-url", remote, "--workdir", str(tmp_path / "work"), "--interval", "3600")
    try:
        assert served.wait_for(lambda e: e["event"] == "sync")["outcome"] == "written", served.log
        assert kv.records(consul, "serve/committed")["company"]
    finally:
        assert served.stop() == 0, served.log


def test_a_stale_write_back_by_the_old_ui_is_repaired_at_once_keeping_its_edit(
        consul: ConsulAgent, example_prometheus: Prometheus, field_repo: GitRepo, tmp_path: Path) -> None:
    """The old UI's PATCH (CONTRACT.md) reads the document through a cache of up to 5 minutes, changes one record
    and writes the whole document back, bare, without check-and-set: a merged commit is reverted in KV, and serve
    restores it at once, keeping the person's edit."""
    key = "serve/stale"
    remote = bare_remote(tmp_path / "remote.git", field_repo)
    served = serve_clone(consul, remote, tmp_path / "work", example_prometheus.url, key, secret=secret_file(tmp_path))
    client = kv.client(consul)
    try:
        served.wait_for(lambda e: e["event"] == "sync")
        cached = json.loads(client.kv.get(key)[1]["Value"])  # the UI's cache, before the merge
        commit = customize_company(field_repo)
        push(field_repo)
        mark = len(served.events)
        assert served.deliver({"ref": "refs/heads/main", "after": commit})[0] == 202
        served.wait_for(lambda e: e["event"] == "sync" and e["commit"] == commit, after=mark)
        assert kv.records(consul, key)["company"]["display_name"] == "Empresa"

        for record in cached["fields"]:
            if record["name"] == "site":
                record["display_name"] = "Localização"
        mark = len(served.events)
        client.kv.put(key, json.dumps(cached))  # the stale write-back: "Empresa" is gone from KV
        repaired = served.wait_for(lambda e: e["event"] == "sync", after=mark)
        assert repaired["trigger"] == "kv" and repaired["outcome"] == "written", served.log
        records = kv.records(consul, key)
        assert records["company"]["display_name"] == "Empresa"  # the merged commit, back
        assert records["site"]["display_name"] == "Localização"  # and the person's edit, kept
    finally:
        assert served.stop() == 0, served.log
