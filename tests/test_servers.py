"""Smoke tests of the harness: the real servers answer the APIs the sync worker relies on."""

from __future__ import annotations

import json
import urllib.request

import pytest
import yaml

from fieldsync.adapters import git

pytestmark = pytest.mark.smoke


def _json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def test_prometheus_serves_its_relabel_rules(start_prometheus, example_config):
    server = start_prometheus(example_config)
    body = _json(f"{server.url}/api/v1/status/config")
    loaded = yaml.safe_load(body["data"]["yaml"])
    assert loaded["global"]["external_labels"] == {"cluster": "demo", "replica": "a"}
    rules = {r.get("target_label"): r for job in loaded["scrape_configs"] for r in job.get("relabel_configs", [])}
    assert rules["company"]["source_labels"] == ["__meta_consul_service_metadata_company"]
    server.reload(example_config.replace("target_label: vendor", "target_label: vendor_name"))
    assert "vendor_name" in _json(f"{server.url}/api/v1/status/config")["data"]["yaml"]


def test_git_repo_fixture_reads_back_through_pygit2(field_repo):
    field_repo.write("fields/extra.yaml", "name: extra\n")
    sha = field_repo.commit("add extra")
    repo = git.open_repo(str(field_repo.path))
    entries = git.git_entries(repo, git.resolve_commit(repo, sha), ["fields"])
    by_path = {e.path: e for e in entries}
    assert by_path["fields/extra.yaml"].read() == b"name: extra\n"
    assert "fields/company.yaml" in by_path
