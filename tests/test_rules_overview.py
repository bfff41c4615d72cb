"""rules/overview.py: what the status shows of servers, fields, runs and size, branch by branch."""

from __future__ import annotations

from fieldsync.model import HandEdit
from fieldsync.rules import overview
from fieldsync.rules.overview import Source

LIVE = {
    "fields": [
        {"name": "company", "display_name": "Empresa", "field_type": "string", "category": "basic", "order": 1,
         "source_label": "__meta_consul_service_metadata_company", "show_in_blackbox": False},
        {"name": "rack", "display_name": "Rack", "order": 2, "source_label": ""},
        {"name": "typed_in_ui", "order": 3},
        "not a record",
    ],
    "extraction_status": {"server_status": [
        {"name": "p1", "hostname": "prom-1", "port": 9090, "success": True, "external_labels": {"site": "a"},
         "fields": ["company", "rack"]},
        {"name": "p2", "hostname": "prom-2", "port": 9090, "success": True, "fields": [{"name": "company"}]},
        {"hostname": "old-only", "port": None, "fields": ["company"]},
        "junk",
    ]},
}
LAST = {"servers": [
    {"name": "p1", "url": "http://prom-1:9090", "hostname": "prom-1", "port": 9090, "success": True, "error": None,
     "duration_ms": 12, "fields_count": 2},
    {"name": "p2", "url": "https://user:pw@prom-2.internal:9090", "hostname": "prom-2", "port": 9090, "success": False,
     "error": "https://user:pw@prom-2.internal:9090: connection refused (after 3 attempts)", "duration_ms": 3000},
    {"name": "p3", "url": "http://p3:9090", "success": False, "error": "down", "fields_count": 0},
]}


def test_servers_join_the_last_read_and_the_document_and_name_no_url() -> None:
    rows = {r["name"]: r for r in overview.servers(LIVE, LAST)}
    assert list(rows) == ["p1", "p2", "p3", "old-only"]  # read in the last run first, then the document's others
    assert rows["p1"] == {"name": "p1", "hostname": "prom-1", "port": 9090, "ok": True, "fields": 2,
                          "duration_ms": 12, "error": None, "external_labels": {"site": "a"}, "carried": False}
    assert rows["p2"]["ok"] is False and rows["p2"]["carried"] and rows["p2"]["fields"] == 1
    assert rows["p2"]["error"] == "prom-2:9090: connection refused (after 3 attempts)"  # no URL, no credentials
    assert rows["p3"] == {"name": "p3", "hostname": "p3", "port": None, "ok": False, "fields": 0,
                          "duration_ms": None, "error": "down", "external_labels": {}, "carried": False}
    assert rows["old-only"]["ok"] is None and rows["old-only"]["hostname"] == "old-only"
    assert overview.servers(None, None) == [] and overview.servers({"extraction_status": {}}, {}) == []


def test_fields_say_where_values_come_from_and_which_are_hand_edits() -> None:
    edits = [HandEdit("company", "display_name", "Company", "Empresa"), HandEdit("company", "category", "x", "y")]
    rows = {r["name"]: r for r in overview.fields(LIVE, {"company"}, edits)}
    assert list(rows) == ["company", "rack", "typed_in_ui"]
    assert str(Source.GIT) == "git file" and rows["company"]["source"] is Source.GIT
    assert rows["company"]["hand_edited"] == ["category", "display_name"]
    assert rows["company"]["display_name"] == "Empresa" and rows["company"]["order"] == 1
    assert rows["company"]["flags"]["show_in_blackbox"] is False and rows["company"]["flags"]["show_in_form"] is True
    assert rows["rack"]["source"] is Source.EXTRACTED and rows["rack"]["hand_edited"] == []
    assert rows["typed_in_ui"]["source"] is Source.LIVE and rows["typed_in_ui"]["field_type"] is None
    assert [r["source"] for r in overview.fields(LIVE, None, [])] == [None, None, None]  # files not known
    lone = {"fields": [{"name": "x", "source_label": "__meta_x"}]}
    assert overview.fields(lone, set(), [])[0]["source"] is Source.EXTRACTED  # by its rule, no server lists it
    assert overview.fields(None, set(), []) == []


def test_runs_and_size() -> None:
    record = {"runs": [{"at": "t2", "outcome": "written", "duration_ms": 40, "trigger": "webhook", "commit": "c"},
                       "junk", {"at": "t1", "outcome": "failed", "extra": 1}]}
    assert overview.runs(record) == [
        {"at": "t2", "outcome": "written", "duration_ms": 40, "trigger": "webhook", "commit": "c"},
        {"at": "t1", "outcome": "failed", "duration_ms": None, "trigger": None, "commit": None}]  # an older run
    assert overview.runs(None) == [] and overview.runs({"runs": None}) == []
    size = overview.size(b"x" * 52429, LIVE)
    assert size == {"bytes": 52429, "limit": 524288, "share": 0.1, "fields": 4, "servers": 3}
    assert overview.size(None, None) == {"bytes": 0, "limit": 524288, "share": 0.0, "fields": 0, "servers": 0}
