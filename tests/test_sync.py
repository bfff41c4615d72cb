"""`fieldsync sync` against real Consul and real Prometheus servers, with real git repositories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.commands import customize_company, finish, run_sync, sync_process
from support.kv import client, live, records, run_record

from fieldsync.adapters.consul import ConsulKV, ConsulSettings
from fieldsync.cli import main
from fieldsync.localservers import refused_address
from fieldsync.rules import document
from fieldsync.rules.config import server_from_arg
from fieldsync.usecases.sync import SyncOptions, sync

SECOND = """
global:
  external_labels: {replica: b}
scrape_configs:
  - job_name: snmp
    file_sd_configs: [{files: [targets/*.json]}]
    relabel_configs:
      - {source_labels: [__meta_consul_service_metadata_rack], target_label: rack}
      - {source_labels: [__meta_consul_service_metadata_b_only], target_label: b_only}
      - {source_labels: [__meta_consul_service_metadata_company], target_label: company, regex: "(.+)"}
"""


def test_customization_survives_resyncs_and_reloads(consul, start_prometheus, example_config, field_repo) -> None:
    agent, key = consul, "survives/fields"
    prom = start_prometheus(example_config)
    customize_company(field_repo)
    expected = {"display_name": "Empresa", "field_type": "select", "category": ["basic", "billing"],
                "options": ["acme", "globex"], "order": 1}

    def company() -> dict:
        return {k: records(agent, key)["company"][k] for k in expected}

    assert run_sync(agent, field_repo.path, prom.url, key=key)[0] == 0
    assert company() == expected
    for _ in range(3):
        code, output = run_sync(agent, field_repo.path, prom.url, key=key)
        assert code == 0 and "unchanged" in output
    prom.reload(example_config.replace("target_label: vendor",
                                       "target_label: vendor\n      - source_labels: [__meta_consul_dc]\n"
                                       "        target_label: zone_new"))
    code, output = run_sync(agent, field_repo.path, prom.url, key=key)
    assert code == 0 and "1 added" in output and "zone_new" in records(agent, key)
    assert company() == expected


@pytest.mark.parametrize("round_", range(5))
def test_parent_and_child_race_ends_with_child(consul, example_prometheus, field_repo,
                                               round_: int) -> None:
    prom = example_prometheus
    key = f"race/parent-child/{round_}"
    field_repo.write("fields/company.yaml", "name: company\ndisplay_name: Parent\n")
    parent = field_repo.commit("parent")
    field_repo.write("fields/company.yaml", "name: company\ndisplay_name: Child\n")
    child = field_repo.commit("child")
    order = [(parent, child), (child, parent)][round_ % 2]  # start order alternates
    outputs = finish([sync_process(consul, field_repo.path, rev, prom.url, key) for rev in order])
    assert all(code in (0, 3) for code, _ in outputs), outputs
    assert records(consul, key)["company"]["display_name"] == "Child", outputs
    assert live(consul, key)[0]["git"]["commit"] == child


def test_four_syncs_at_one_commit_write_once(consul, example_prometheus, field_repo) -> None:
    prom = example_prometheus
    key = "race/four"
    outputs = finish([sync_process(consul, field_repo.path, "HEAD", prom.url, key) for _ in range(4)])
    assert [code for code, _ in outputs] == [0, 0, 0, 0], outputs
    assert sum("written to" in out for _, out in outputs) == 1, outputs
    assert sum("unchanged" in out for _, out in outputs) == 3, outputs
    _, item = client(consul).kv.get(key)
    assert item["CreateIndex"] == item["ModifyIndex"]


def test_wiped_kv_is_rebuilt_identically(consul, example_prometheus, field_repo) -> None:
    prom = example_prometheus
    key = "wipe/fields"
    customize_company(field_repo)
    assert run_sync(consul, field_repo.path, prom.url, key=key)[0] == 0
    before = live(consul, key)[0]
    client(consul).kv.delete(key)
    assert live(consul, key)[0] is None
    assert run_sync(consul, field_repo.path, prom.url, key=key)[0] == 0
    assert live(consul, key)[0]["fields"] == before["fields"]


def test_one_server_down_keeps_its_fields_both_down_writes_nothing(consul, start_prometheus, example_config,
                                                                   field_repo) -> None:
    first, second = start_prometheus(example_config), start_prometheus(SECOND)
    key = "down/fields"
    assert run_sync(consul, field_repo.path, first.url, second.url, key=key)[0] == 0
    by_server = {e["name"]: e["fields"] for e in live(consul, key)[0]["extraction_status"]["server_status"]}
    assert "b_only" in by_server[second.url.split("//")[1]] and "b_only" not in by_server[first.url.split("//")[1]]
    entries_before = live(consul, key)[0]["extraction_status"]["server_status"]
    second.stop()
    code, output = run_sync(consul, field_repo.path, first.url, second.url, key=key)
    assert code == 0 and "1 failed" in output
    kept = records(consul, key)
    assert kept["b_only"]["source_label"] == "__meta_consul_service_metadata_b_only"
    assert "rack" in kept
    # The document holds data from successful reads only: the down server keeps its last entry as it was;
    # the failure is in the run record.
    status = live(consul, key)[0]["extraction_status"]
    assert status["server_status"] == entries_before and status["extraction_complete"]
    failed = [s for s in run_record(consul, key)["last"]["servers"] if not s["success"]]
    assert len(failed) == 1 and "Connection refused" in failed[0]["error"]
    _, index = live(consul, key)
    first.stop()
    code, output = run_sync(consul, field_repo.path, first.url, second.url, key=key)
    assert code == 1 and "no Prometheus server answered, nothing written" in output
    assert live(consul, key)[1] == index


def test_bad_yaml_refuses_before_touching_consul(consul, field_repo, example_prometheus) -> None:
    prom = example_prometheus
    field_repo.write("fields/company.yaml", "name: company\norder: [\n")
    field_repo.commit("broken")
    key = "bad/fields"
    code, output = run_sync(consul, field_repo.path, prom.url, key=key)
    assert code == 1 and "fields/company.yaml:3:1: error: YAML" in output and "nothing written" in output
    assert live(consul, key)[0] is None
    assert client(consul).kv.get(f"fieldsync/{key}.lock")[1] is None
    # Nothing listens here: had sync reached for Consul, the error would say so instead.
    with refused_address() as nowhere:
        code, output = run_sync(nowhere, field_repo.path, prom.url, key=key)
    assert code == 1 and "fields/company.yaml" in output and "cannot reach Consul" not in output


def test_refuses_to_roll_back(consul, example_prometheus, field_repo) -> None:
    prom = example_prometheus
    key = "rollback/fields"
    parent = customize_company(field_repo)
    field_repo.write("fields/company.yaml", "name: company\ndisplay_name: Newer\n")
    field_repo.commit("newer")
    assert run_sync(consul, field_repo.path, prom.url, key=key)[0] == 0
    code, output = run_sync(consul, field_repo.path, prom.url, key=key, extra=("--rev", parent))
    assert code == 3 and "refusing to roll back" in output
    assert records(consul, key)["company"]["display_name"] == "Newer"


def test_old_envelope_is_shown_as_drift_then_replaced_by_the_bare_document(consul, example_prometheus,
                                                                           field_repo) -> None:
    prom = example_prometheus
    key = "envelope/fields"
    old = {"data": {"version": "1.0", "fields": [{"name": "company", "display_name": "Old UI"}]},
           "meta": {"updated_by": "ui"}}
    client(consul).kv.put(key, json.dumps(old))
    code, output = run_sync(consul, field_repo.path, prom.url, key=key, extra=("--drift", "refuse"))
    assert code == 3 and 'display_name: "Old UI" -> "Company"' in output
    code, output = run_sync(consul, field_repo.path, prom.url, key=key, extra=("--drift", "refuse", "--force"))
    assert code == 0 and "written" in output
    doc = live(consul, key)[0]
    assert "data" not in doc and doc["source"] == "fieldsync" and records(consul, key)["company"]["display_name"] \
        == "Company"


def test_value_that_is_not_a_document_is_left_alone(consul, example_prometheus, field_repo) -> None:
    prom = example_prometheus
    key = "garbage/fields"
    client(consul).kv.put(key, "hello")
    code, output = run_sync(consul, field_repo.path, prom.url, key=key)
    assert code == 3 and "not JSON" in output
    assert client(consul).kv.get(key)[1]["Value"] == b"hello"


def test_document_over_consul_limit_is_not_written(consul, field_repo, example_prometheus) -> None:
    prom = example_prometheus
    for i in range(200):
        field_repo.write(f"fields/big_{i}.yaml", f"name: big_{i}\ndescription: {'x' * 3000}\n")
    field_repo.commit("too big")
    code, output = run_sync(consul, field_repo.path, prom.url, key="big/fields")
    assert code == 1 and "over Consul's 524,288 byte value limit" in output
    assert live(consul, "big/fields")[0] is None


def test_dry_run_writes_nothing(consul, example_prometheus, field_repo) -> None:
    prom = example_prometheus
    code, output = run_sync(consul, field_repo.path, prom.url, key="dry/fields", extra=("--dry-run",))
    assert code == 0 and "dry run" in output and "25 added" in output
    assert live(consul, "dry/fields")[0] is None


def test_acl_token_from_file(start_consul, example_prometheus, field_repo, tmp_path) -> None:
    agent = start_consul(acl_master_token="root-secret")
    prom = example_prometheus
    code, output = run_sync(agent, field_repo.path, prom.url)
    assert code == 1 and "Consul denied" in output
    token = tmp_path / "token"
    token.write_text("root-secret\n")
    code, output = run_sync(agent, field_repo.path, prom.url, env={"CONSUL_HTTP_TOKEN_FILE": str(token)})
    assert code == 0, output


def test_waits_for_a_held_lock_then_gives_up(consul, example_prometheus, field_repo) -> None:
    prom = example_prometheus
    key = "locked/fields"
    other = client(consul)
    session = other.session.create(ttl=30, behavior="delete", lock_delay=0)
    assert other.kv.put(f"fieldsync/{key}.lock", "someone", acquire=session)
    code, output = run_sync(consul, field_repo.path, prom.url, key=key, extra=("--lock-timeout", "1"))
    assert code == 1 and "another sync holds" in output
    assert f"waiting for fieldsync/{key}.lock: held by another client" in output
    assert live(consul, key)[0] is None
    other.session.destroy(session)
    assert run_sync(consul, field_repo.path, prom.url, key=key)[0] == 0


class _InterferingKV(ConsulKV):
    """A real client that lets another writer change `key` between our read and our write, `times` times."""

    def __init__(self, settings: ConsulSettings, key: str, times: int) -> None:
        super().__init__(settings)
        self.key, self.times = key, times

    def read(self, key: str) -> tuple[bytes | None, int]:
        value, index = super().read(key)
        if self.times > 0 and key == self.key:
            self.times -= 1
            self.client.kv.put(key, document.encode(document.seal({"fields": [], "interfered": self.times})))
        return value, index


def test_cas_conflict_rereads_and_rebuilds(consul, example_prometheus, field_repo) -> None:
    prom = example_prometheus
    kv = _InterferingKV(ConsulSettings.resolve({"CONSUL_HTTP_ADDR": consul.http_addr}), "cas/fields", times=2)
    options = SyncOptions(repo=str(field_repo.path), key="cas/fields", servers=(server_from_arg(prom.url),))
    report = sync(options, kv)
    assert report.outcome == "written" and report.attempts == 3
    assert "interfered" not in live(consul, "cas/fields")[0]


def test_extract_command_against_real_prometheus(example_prometheus) -> None:
    prom = example_prometheus
    result = CliRunner().invoke(main, ["extract", "--prometheus", prom.url, "--format", "json"])
    assert result.exit_code == 0, result.output
    [status] = json.loads(result.output)
    assert status["success"] and status["external_labels"] == {"cluster": "demo", "replica": "a"}
    by_name = {f["name"]: f for f in status["fields"]}
    assert by_name["cost_center"] == {"name": "cost_center", "source_label":
                                      "__meta_consul_service_metadata_cost_center",
                                      "regex": "([A-Z]+)-.*", "replacement": "$1"}
    file_result = CliRunner().invoke(main, ["extract", "--prometheus", str(Path(prom.config_path)), "--format",
                                            "json"])
    assert [f for f in json.loads(file_result.output)[0]["fields"]] == status["fields"]


def test_a_watcher_of_the_documents_folder_never_wakes_for_nothing(consul, start_prometheus, example_config,
                                                                   field_repo) -> None:
    """A consumer's blocking query on the folder must not wake across no-op syncs, a server going down and up, or
    the same commit named two ways; it wakes once for a real change."""
    import threading

    first, second = start_prometheus(example_config), start_prometheus(SECOND)
    key = "watched/folder/fields"
    servers = (first.url, second.url)
    assert run_sync(consul, field_repo.path, *servers, key=key)[0] == 0
    watcher, stop, wakeups = client(consul), threading.Event(), []
    index, _ = watcher.kv.get("watched/folder/", recurse=True)

    def watch() -> None:
        seen = index
        while not stop.is_set():
            now, _ = watcher.kv.get("watched/folder/", recurse=True, index=seen, wait="1s")
            if now != seen:
                wakeups.append(now)
                seen = now

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    for _ in range(10):
        assert "unchanged" in run_sync(consul, field_repo.path, *servers, key=key)[1]
    second.stop()
    code, output = run_sync(consul, field_repo.path, *servers, key=key)
    assert code == 0 and "1 failed" in output and "unchanged" in output, output
    second.start()
    sha = field_repo.repo.head.target
    for rev in (str(sha), "HEAD", str(sha)):
        assert "unchanged" in run_sync(consul, field_repo.path, *servers, key=key, extra=("--rev", rev))[1]
    assert wakeups == []
    field_repo.write("fields/site.yaml", "name: site\ndisplay_name: Site Name\n")
    field_repo.commit("a real change")
    assert "written" in run_sync(consul, field_repo.path, *servers, key=key)[1]
    for _ in range(40):  # the watcher sees the change within its next poll
        if wakeups:
            break
        threading.Event().wait(0.05)
    stop.set()
    thread.join(5)
    assert len(wakeups) == 1  # the watcher can wake: it did, once, for the change
    keys = client(consul).kv.get("watched/folder/", recurse=True, keys=True)[1]
    assert keys == [key]  # the lock and the run record live elsewhere


def test_deletion_budget_stops_a_sync_that_would_remove_many_fields(consul, start_prometheus, example_config,
                                                                    git_repo) -> None:
    prom = start_prometheus(example_config)
    git_repo.write("README.md", "no field files: every field comes from Prometheus\n")
    git_repo.commit("start")
    key = "budget/fields"
    assert run_sync(consul, git_repo.path, prom.url, key=key)[0] == 0
    before, index = live(consul, key)
    prom.reload("scrape_configs:\n  - job_name: two\n    relabel_configs:\n"
                "      - {source_labels: [__meta_consul_service_metadata_company], target_label: company}\n"
                "      - {source_labels: [__meta_consul_service_metadata_env], target_label: env}\n")
    code, output = run_sync(consul, git_repo.path, prom.url, key=key)
    assert code == 3 and "would remove 10 of 12 fields" in output and "cost_center" in output, output
    assert "--allow-delete" in output and live(consul, key)[1] == index
    code, output = run_sync(consul, git_repo.path, prom.url, key=key, extra=("--allow-delete",))
    assert code == 0 and sorted(records(consul, key)) == ["company", "env"], output


def test_sync_format_json_prints_the_run_record(consul, example_prometheus, field_repo) -> None:
    from support.kv import run_record

    key = "json/fields"
    code, output = run_sync(consul, field_repo.path, example_prometheus.url, key=key, extra=("--format", "json"))
    assert code == 0, output
    record = json.loads(output)
    assert record == run_record(consul, key)["last"]  # the same run record the status key holds
    assert record["outcome"] == "written" and record["fields"]["added"] and record["duration_ms"] >= 0
    assert [s["success"] for s in record["servers"]] == [True]
    with refused_address() as nowhere:
        code, output = run_sync(consul, field_repo.path, f"http://{nowhere}", key=key, extra=("--format", "json"))
    assert code == 1
    failed = json.loads(output.splitlines()[0])
    assert failed["outcome"] == "failed" and "no Prometheus server answered" in failed["error"]


def scale_config(fields: int, site: int) -> str:
    """A Prometheus config whose consul job derives `fields` labels from service metadata."""
    rules = "".join(f"  - source_labels: [__meta_consul_service_metadata_campo_{n:03d}]\n"
                    f"    target_label: campo_{n:03d}\n" for n in range(fields))
    return (f"global:\n  external_labels: {{site: site-{site:02d}, datacenter: dc{site % 3}}}\n"
            f"scrape_configs:\n- job_name: consul\n  relabel_configs:\n{rules}")


def test_400_fields_on_20_servers_are_one_document_the_old_readers_read(consul, field_repo) -> None:
    """The old system's readers (CONTRACT.md) find every field discovered on all 20 sites, each site's labels by
    hostname, and the list in order, from a document under Consul's value limit."""
    from contextlib import ExitStack

    from support import oldbackend
    from support.badhttp import config_of, serving

    key = "scale/fields"
    with ExitStack() as stack:
        urls = [stack.enter_context(serving(config_of(scale_config(400, site))))[0] for site in range(20)]
        field_repo.write("fieldsync.yaml", f"key: {key}\nprometheus:\n" + "".join(
            f"  - {{name: site-{n:02d}, url: '{url}', hostname: 'prometheus-{n:02d}.example.internal'}}\n"
            for n, url in enumerate(urls)))
        field_repo.write("fields/campo_007.yaml", "name: campo_007\ndisplay_name: Sétimo\norder: 1\n")
        field_repo.commit("twenty sites")
        code, output = run_sync(consul, field_repo.path, key=key)
    assert code == 0, output
    raw = client(consul).kv.get(key)[1]["Value"]
    assert len(raw) < 512 * 1024, len(raw)
    doc = json.loads(raw)
    entries = doc["extraction_status"]["server_status"]
    hosts = [f"prometheus-{n:02d}.example.internal" for n in range(20)]
    scaled = [r["name"] for r in doc["fields"] if r["name"].startswith("campo_")]
    assert len(scaled) == 400
    assert all(oldbackend.discovered_in(name, entries) == hosts for name in scaled)
    assert oldbackend.site_labels(hosts[13], entries) == {"site": "site-13", "datacenter": "dc1"}
    assert oldbackend.listed(doc)[0] == "campo_007"
