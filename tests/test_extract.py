"""Extraction rules (pure) and the file source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fieldsync.model import Rule
from fieldsync.rules.config import server_from_arg
from fieldsync.rules.extraction import ConfigError, combine, read
from fieldsync.usecases.extract import extract_all

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "example" / "prometheus.yml"


def job(name: str, *rules: dict, **extra: object) -> dict:
    return {"job_name": name, "relabel_configs": list(rules), **extra}


def rules_from_config(config: dict) -> tuple[Rule, ...]:
    return read(json.dumps(config), "prometheus.yml").rules  # JSON is YAML


def test_rules_follow_the_field_rules() -> None:
    config = {"scrape_configs": [
        job("node",
            {"source_labels": ["__meta_consul_service_metadata_company"], "target_label": "company"},
            {"source_labels": ["__address__"], "target_label": "instance"},  # internal source, not multi-target
            {"source_labels": ["__meta_x"], "target_label": "__tmp_x"},  # internal target
            {"source_labels": ["__meta_x"], "target_label": "job"},  # job is never a field
            {"source_labels": ["team_label"], "target_label": "team"},  # a plain label
            {"source_labels": ["__param_module"], "target_label": "module"},
            {"action": "labelmap", "regex": "__meta_(.+)"},  # no target_label
            {"source_labels": ["plain", "__meta_consul_dc"], "regex": "a;(.*)", "replacement": "dc-$1",
             "target_label": "datacenter"}),
        job("probe", {"source_labels": ["__address__"], "target_label": "instance"},
            {"target_label": "probe_kind", "replacement": "http"}, metrics_path="/probe"),
    ]}
    assert rules_from_config(config) == (
        Rule("company", "__meta_consul_service_metadata_company", "(.*)", "$1"),
        Rule("team", "team_label", "(.*)", "$1"),
        Rule("module", "__param_module", "(.*)", "$1"),
        Rule("datacenter", "__meta_consul_dc", "a;(.*)", "dc-$1"),
        Rule("instance", "__address__", "(.*)", "$1"),
        Rule("probe_kind", "", "(.*)", "http"),
    )


def test_first_rule_for_a_name_wins() -> None:
    config = {"scrape_configs": [
        job("a", {"source_labels": ["__meta_one"], "target_label": "x"}),
        job("b", {"source_labels": ["__meta_two"], "target_label": "x", "regex": "(.+)"}),
    ]}
    assert rules_from_config(config) == (Rule("x", "__meta_one", "(.*)", "$1"),)


def test_multi_target_detected_by_param_target() -> None:
    config = {"scrape_configs": [job("bb", {"source_labels": ["__address__"], "target_label": "__param_target"},
                                     {"source_labels": ["__address__"], "target_label": "probe_host"})]}
    assert [r.name for r in rules_from_config(config)] == ["probe_host"]


def test_empty_and_odd_configs_yield_nothing() -> None:
    assert rules_from_config({}) == ()
    assert rules_from_config({"scrape_configs": None}) == ()
    assert read("", "empty.yml").rules == () and read("# nothing\n", "comment.yml").rules == ()
    assert combine([("p.yml", "global: null\n")]).external_labels == {}
    assert combine([("p.yml", "global: {external_labels: {a: null, b: 1, c: true}}\n")]).external_labels == {
        "a": "", "b": "1", "c": "true"}  # as Prometheus reads them: text


def test_file_source_reads_example_and_external_labels() -> None:
    [status] = extract_all([server_from_arg(str(EXAMPLE))])
    assert status.success and status.external_labels == {"cluster": "demo", "replica": "a"}
    names = [r.name for r in status.rules]
    assert names[:3] == ["cservice", "company", "env"] and "cost_center" in names
    assert status.to_json()["fields_count"] == len(names)


def test_directory_source_concatenates_jobs(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text("global: {external_labels: {dc: one}}\nscrape_configs:\n"
                                    "  - job_name: a\n    relabel_configs:\n"
                                    "      - {source_labels: [__meta_a], target_label: a}\n")
    (tmp_path / "b.yml").write_text("scrape_configs:\n  - job_name: b\n    relabel_configs:\n"
                                    "      - {source_labels: [__meta_b], target_label: b}\n")
    [status] = extract_all([server_from_arg(str(tmp_path))])
    assert [r.name for r in status.rules] == ["a", "b"] and status.external_labels == {"dc": "one"}


def test_failures_are_reported_per_server(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("scrape_configs: [\n")
    statuses = extract_all([server_from_arg(str(bad)), server_from_arg("http://127.0.0.1:1")])
    assert [s.success for s in statuses] == [False, False]
    assert "not a Prometheus config" in statuses[0].error
    assert "127.0.0.1:1" in statuses[1].error and "3 attempts" in statuses[1].error


def test_directory_source_keeps_the_global_of_the_file_that_has_it(tmp_path: Path) -> None:
    (tmp_path / "blackbox.yml").write_text("modules:\n  http_2xx: {prober: http}\n")  # sorts first, no global
    (tmp_path / "prometheus-stress.yml").write_text("global: {scrape_interval: 15s}\nscrape_configs: []\n")
    (tmp_path / "prometheus.yml").write_text(
        "global: {external_labels: {site: palmas, datacenter: dtc}}\nscrape_configs:\n  - job_name: a\n"
        "    relabel_configs:\n      - {source_labels: [__meta_a], target_label: a}\n")
    [status] = extract_all([server_from_arg(str(tmp_path))])
    assert status.success and status.external_labels == {"site": "palmas", "datacenter": "dtc"}


def test_aliases_resolve_wherever_their_anchor_was_written() -> None:
    text = """
global: {scrape_interval: 15s, external_labels: &labels {site: palmas}}
rule_defaults: &meta {source_labels: [__meta_consul_service_metadata_company], target_label: company}
scrape_configs:
  - job_name: a
    static_configs: [{targets: [x], labels: &extra {team_rules: ignored}}]
    relabel_configs: &rules
      - *meta
      - <<: *meta
        target_label: customer
        regex: (.+)
      - {<<: [{target_label: x1, replacement: one}, {target_label: x2, source_labels: [__meta_x]}]}
  - job_name: b
    relabel_configs: *rules
"""
    config = read(text, "p.yml")
    assert config.rules == (Rule("company", "__meta_consul_service_metadata_company", "(.*)", "$1"),
                            Rule("customer", "__meta_consul_service_metadata_company", "(.+)", "$1"),
                            Rule("x1", "__meta_x", "(.*)", "one"))
    assert combine([("p.yml", text)]).external_labels == {"site": "palmas"}


def test_what_extraction_does_not_read_is_not_kept() -> None:
    """Targets and service discovery settings are passed over: the jobs hold their name, path, params and rules."""
    from fieldsync.rules.extraction import _Events

    events = _Events("- job_name: a\n  static_configs: [{targets: [x, y]}]\n  relabel_configs:\n"
                     "    - {source_labels: [a], target_label: b, action: replace, separator: ';'}\n", "p.yml")
    events.next(), events.next()
    assert list(events.jobs(events.next())) == [
        {"job_name": "a", "relabel_configs": [{"source_labels": ["a"], "target_label": "b"}]}]


def test_sixty_thousand_plain_relabel_rules_are_read() -> None:
    rules = "".join(f"  - source_labels: [__meta_consul_service_metadata_f{n}]\n    target_label: f{n}\n"
                    for n in range(60_000))
    config = read(f"scrape_configs:\n- job_name: big\n  relabel_configs:\n{rules}", "big.yml")
    assert len(config.rules) == 60_000 and config.rules[-1].name == "f59999"


@pytest.mark.parametrize("text, fragment", [
    ("a: 1\n---\nb: 2\n", "more than one YAML document"),
    ("? [a, b]\n: 1\n", "a mapping key is not a scalar"),
    ("scrape_configs: *nowhere\n", "names no anchor"),
    ("scrape_configs: [{job_name: a, relabel_configs: [{<<: 5}]}]\n", "merge key"),
    ("global: [a]\n", "global must be a mapping, got a list"),
    ("global: {external_labels: [a]}\n", "global.external_labels must be a mapping"),
    ("scrape_configs: [{relabel_configs: [{source_labels: a, target_label: b}]}]\n", "source_labels in job 0"),
    ("- 1\n", "top level is not a mapping"),
    ("scrape_configs: [" * 2000, "not a Prometheus config"),
])
def test_configs_extraction_cannot_read_are_named(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match="p.yml") as raised:
        read(text, "p.yml")
    assert fragment in str(raised.value), raised.value
