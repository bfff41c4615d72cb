"""Smoke tests of the harness: the real servers answer the APIs the sync worker relies on."""

from __future__ import annotations

import json
import urllib.request

import consul
import yaml

from fieldsync import sources


def _json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def test_consul_kv_check_and_set(consul_agent_client):
    client = consul_agent_client
    assert client.kv.put("smoke/cas", "one", cas=0)
    assert not client.kv.put("smoke/cas", "again", cas=0), "cas=0 must refuse an existing key"
    _, item = client.kv.get("smoke/cas")
    assert item["Value"] == b"one"
    assert client.kv.put("smoke/cas", "two", cas=item["ModifyIndex"])
    assert not client.kv.put("smoke/cas", "stale", cas=item["ModifyIndex"])
    assert client.kv.get("smoke/cas")[1]["Value"] == b"two"


def test_prometheus_serves_its_relabel_rules(start_prometheus, example_config):
    server = start_prometheus(example_config)
    body = _json(f"{server.url}/api/v1/status/config")
    loaded = yaml.safe_load(body["data"]["yaml"])
    assert loaded["global"]["external_labels"] == {"cluster": "demo", "replica": "a"}
    rules = {r.get("target_label"): r for job in loaded["scrape_configs"] for r in job.get("relabel_configs", [])}
    assert rules["company"]["source_labels"] == ["__meta_consul_service_metadata_company"]


def test_prometheus_reload_applies_a_new_config(start_prometheus, example_config):
    server = start_prometheus(example_config)
    server.reload(example_config.replace("target_label: vendor", "target_label: vendor_name"))
    assert "vendor_name" in _json(f"{server.url}/api/v1/status/config")["data"]["yaml"]


def test_persistent_consul_keeps_kv_across_restart(start_consul):
    agent = start_consul(dev=False)
    client = consul.Consul(*agent.http_addr.split(":"))
    assert client.kv.put("smoke/restart", "kept")
    agent.restart()
    assert client.kv.get("smoke/restart")[1]["Value"] == b"kept"


def test_git_repo_fixture_reads_back_through_pygit2(field_repo):
    field_repo.write("fields/extra.yaml", "name: extra\n")
    sha = field_repo.commit("add extra")
    repo = sources.open_repo(str(field_repo.path))
    entries = sources.git_entries(repo, sources.resolve_commit(repo, sha), ["fields"])
    by_path = {e.path: e for e in entries}
    assert by_path["fields/extra.yaml"].read() == b"name: extra\n"
    assert "fields/company.yaml" in by_path
