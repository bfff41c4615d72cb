"""The merge and the document: YAML always wins, idempotent, deterministic (hypothesis properties)."""

from __future__ import annotations

import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from fieldsync.model import GitInfo, Rule, ServerStatus
from fieldsync.rules import document, legacy, schemas
from fieldsync.rules.diff import diff_fields
from fieldsync.rules.document import build_document
from fieldsync.rules.merge import discover, display_name

GIT = GitInfo("a" * 40, "refs/heads/main", "2026-01-01T00:00:00+00:00")
NAMES = ["company", "env", "site", "region", "vendor", "cost_center", "x1"]

attribute_values = {
    "display_name": st.text(min_size=1, max_size=8),
    "field_type": st.sampled_from(["string", "number", "text", "url", "boolean"]),
    "category": st.one_of(st.sampled_from(["basic", "extra"]), st.lists(st.sampled_from(["a", "b"]), min_size=1,
                                                                          max_size=2, unique=True)),
    "required": st.booleans(),
    "order": st.integers(0, 5),
    "show_in_blackbox": st.booleans(),
    "description": st.text(max_size=5),
}
overrides_st = st.dictionaries(
    st.sampled_from(NAMES),
    st.fixed_dictionaries({}, optional=attribute_values),
    max_size=5,
).map(lambda d: {name: {"name": name, **attrs} for name, attrs in d.items()})


@st.composite
def statuses_st(draw: st.DrawFn) -> list[ServerStatus]:
    statuses = []
    for server in ("p1", "p2", "p3")[: draw(st.integers(1, 3))]:
        names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=5))
        ok = draw(st.booleans())
        rules = tuple(Rule(n, f"__meta_{server}_{n}", "(.*)", "$1") for n in names) if ok else ()
        statuses.append(ServerStatus(server, f"http://{server}", ok, None if ok else "down", 1, {}, rules))
    return statuses


def build(overrides: dict, statuses: list[ServerStatus], live: dict | None = None, now: str = "t0") -> dict:
    return build_document(overrides, statuses, live, GIT, now)


@settings(max_examples=300, deadline=None)
@given(overrides_st, statuses_st())
def test_yaml_always_wins(overrides: dict, statuses: list[ServerStatus]) -> None:
    records = {r["name"]: r for r in build(overrides, statuses)["fields"]}
    for name, attrs in overrides.items():
        for key, value in attrs.items():
            assert records[name][key] == value


@settings(max_examples=300, deadline=None)
@given(overrides_st, statuses_st())
def test_every_field_once_sorted_with_all_attributes(overrides: dict, statuses: list[ServerStatus]) -> None:
    doc = build(overrides, statuses)
    names = [r["name"] for r in doc["fields"]]
    seen = set(overrides) | {r.name for s in statuses if s.success for r in s.rules}
    assert sorted(names) == sorted(seen) and len(names) == len(set(names))
    assert [(r["order"], r["name"]) for r in doc["fields"]] == sorted((r["order"], r["name"]) for r in doc["fields"])
    expected_keys = {"name", *schemas.field_properties(), "source_label", "regex", "replacement"}
    assert all(set(r) == expected_keys for r in doc["fields"])
    assert doc["total_fields"] == len(names)


@settings(max_examples=300, deadline=None)
@given(overrides_st, statuses_st())
def test_discovered_in_recomputed_the_old_way_names_every_server_that_has_the_field(
        overrides: dict, statuses: list[ServerStatus]) -> None:
    found = legacy.discovered_in(build(overrides, statuses))
    for record in build(overrides, statuses)["fields"]:
        having = tuple(s.name for s in statuses if s.success and any(r.name == record["name"] for r in s.rules))
        assert found.get(record["name"], ()) == having


@settings(max_examples=300, deadline=None)
@given(overrides_st, statuses_st(), st.randoms())
def test_deterministic_whatever_the_input_order(overrides: dict, statuses: list[ServerStatus],
                                                rnd: random.Random) -> None:
    """Field files and the keys inside each may come in any order; the document's bytes do not change."""
    shuffled = {name: dict(rnd.sample(list(attrs.items()), len(attrs)))
                for name, attrs in rnd.sample(list(overrides.items()), len(overrides))}
    assert document.encode(build(overrides, statuses)) == document.encode(build(shuffled, statuses))


@settings(max_examples=300, deadline=None)
@given(overrides_st, statuses_st())
def test_idempotent_resync_over_own_output(overrides: dict, statuses: list[ServerStatus]) -> None:
    first = build(overrides, statuses)
    again = build(overrides, statuses, live=json.loads(document.encode(first)), now="t1")
    assert document.content(first) == document.content(again)
    assert diff_fields(first["fields"], again["fields"]).empty


def test_a_document_of_an_earlier_fieldsync_differs_in_nothing_a_person_set() -> None:
    statuses = [ServerStatus("p1", "u", True, rules=(Rule("env", "__meta_env", "(.*)", "$1"),))]
    now = build({"env": {"name": "env", "order": 3}}, statuses)
    older = [{**record, "discovered_in": ["p1"]} for record in now["fields"]]
    found = diff_fields(older, now["fields"])
    assert found.empty and not found.refreshed, found


def test_unseen_yaml_field_stays_and_unknown_field_gets_defaults() -> None:
    statuses = [ServerStatus("p1", "u", True, rules=(Rule("cost_center", "__meta_cc", "(.*)", "$1"),))]
    doc = build({"company": {"name": "company", "field_type": "select", "options": ["a"]}}, statuses)
    records = {r["name"]: r for r in doc["fields"]}
    assert "company" not in legacy.discovered_in(doc) and records["company"]["source_label"] == ""
    assert records["company"]["field_type"] == "select"
    cc = records["cost_center"]
    assert cc["display_name"] == "Cost Center" and legacy.discovered_in(doc)["cost_center"] == ("p1",)
    assert {k: cc[k] for k in schemas.field_defaults()} == schemas.field_defaults()


def test_field_of_a_failed_server_is_carried_over_from_live() -> None:
    up = ServerStatus("p1", "u1", True, rules=(Rule("company", "__meta_company", "(.*)", "$1"),))
    both = [up, ServerStatus("p2", "u2", True, rules=(Rule("vendor", "__meta_vendor", "v(.*)", "$1"),
                                                      Rule("company", "__meta_c2", "(.*)", "$1")))]
    live = build({}, both)
    down = [up, ServerStatus("p2", "u2", False, error="connection refused")]
    doc = build({}, down, live=live)
    records = {r["name"]: r for r in doc["fields"]}
    assert records["vendor"]["regex"] == "v(.*)" and legacy.discovered_in(doc)["vendor"] == ("p2",)
    assert legacy.discovered_in(doc)["company"] == ("p1", "p2")
    assert records["company"]["source_label"] == "__meta_company"
    # Once p2 answers without the field, it is gone.
    assert "vendor" not in {r["name"] for r in build({}, [up, ServerStatus("p2", "u2", True)], live=live)["fields"]}


def test_server_entries_hold_what_the_old_readers_read_with_fields_by_name() -> None:
    up = ServerStatus("p1", "http://prom-1:9090", True, None, 12, {"site": "a"},
                      (Rule("company", "__meta_company", "(.*)", "$1"),), hostname="prom-1", port=9090, files_count=1)
    [entry] = build({}, [up])["extraction_status"]["server_status"]
    assert entry == {"name": "p1", "hostname": "prom-1", "port": 9090, "success": True, "from_cache": False,
                     "files_count": 1, "error": None, "duration_ms": 12, "fields_count": 1,
                     "external_labels": {"site": "a"}, "fields": ["company"]}


def test_a_failed_servers_entry_in_the_older_shape_is_carried_by_name() -> None:
    """A document an earlier fieldsync wrote lists each server's fields as objects and records `discovered_in`: a
    server that is down now keeps its entry, its fields listed by name, and its fields' records."""
    older = build({}, [ServerStatus("p1", "u1", True, rules=(Rule("company", "__meta_company", "(.*)", "$1"),)),
                       ServerStatus("p2", "u2", True, rules=(Rule("vendor", "__meta_vendor", "v(.*)", "$1"),))])
    for entry in older["extraction_status"]["server_status"]:
        entry["url"] = "http://" + entry["name"]
        entry["fields"] = [{"name": n, "source_label": "", "regex": None, "replacement": None} for n in entry["fields"]]
    for record in older["fields"]:
        record["discovered_in"] = ["p1"] if record["name"] == "company" else ["p2"]
    doc = build({}, [ServerStatus("p1", "u1", True, rules=(Rule("company", "__meta_company", "(.*)", "$1"),)),
                     ServerStatus("p2", "u2", False, error="down")], live=older)
    carried = doc["extraction_status"]["server_status"][1]
    assert carried["name"] == "p2" and carried["fields"] == ["vendor"] and "url" not in carried
    assert {r["name"]: r["regex"] for r in doc["fields"]}["vendor"] == "v(.*)"
    assert all("discovered_in" not in r for r in doc["fields"])


def test_400_fields_on_20_servers_fit_in_a_consul_value() -> None:
    """Each record carries the old system's 31 keys; each server lists the field names it has. Names are longer
    than the old system's real ones (9 characters on average) and every field has a description."""
    names = [f"field_{n:03d}_abc" for n in range(400)]
    statuses = [ServerStatus(f"prometheus-{s:02d}.example.internal:9090", f"http://prometheus-{s:02d}:9090", True,
                             None, 40, {"cluster": f"cluster-{s:02d}", "datacenter": "dc1"},
                             tuple(Rule(n, f"__meta_consul_service_metadata_{n}", "(.*)", "$1") for n in names),
                             hostname=f"prometheus-{s:02d}.example.internal", port=9090) for s in range(20)]
    overrides = {n: {"name": n, "display_name": n.title(), "description": "d" * 40, "category": ["basic", "extra"]}
                 for n in names}
    doc = build(overrides, statuses)
    assert len(document.encode(doc)) < document.CONSUL_VALUE_LIMIT
    assert all(len(hosts) == 20 for hosts in legacy.discovered_in(doc).values())


def test_discover_first_server_wins() -> None:
    found = discover([ServerStatus("a", "u", True, rules=(Rule("x", "__meta_a", "(.*)", "$1"),)),
                      ServerStatus("b", "u", True, rules=(Rule("x", "__meta_b", "(.*)", "$1"),))])
    assert found["x"].rule.source_label == "__meta_a" and found["x"].servers == ("a", "b")


def test_display_name() -> None:
    assert display_name("cost_center") == "Cost Center"
    assert display_name("os") == "Os"
    assert display_name("_x") == "X"


def test_content_ignores_timestamps_and_durations() -> None:
    statuses = [ServerStatus("p1", "u", True, duration_ms=5)]
    a = build({}, statuses, now="t0")
    b = build({}, [ServerStatus("p1", "u", True, duration_ms=900)], now="t1")
    assert document.encode(a) != document.encode(b)
    assert document.content(a) == document.content(b)
    c = build({"x1": {"name": "x1"}}, statuses)
    assert document.content(a) != document.content(c)


def test_content_leaves_out_the_volatile_parts_only_where_they_are() -> None:
    doc = build({"x1": {"name": "x1"}}, [ServerStatus("p1", "u", True, duration_ms=5)])
    stripped = json.loads(document.content(doc))
    assert "last_updated" not in stripped and "extracted_at" not in stripped["extraction_status"]
    assert "ref" not in stripped["git"] and "duration_ms" not in stripped["extraction_status"]["server_status"][0]
    assert stripped["fields"] == doc["fields"] and stripped["git"]["commit"] == GIT.commit
    odd = {**doc, "fields": [{**doc["fields"][0], "ref": "a", "duration_ms": 1}]}  # keys a PATCH may add
    assert document.content(odd) != document.content({**odd, "fields": [{**odd["fields"][0], "ref": "b"}]})
    assert document.content({"fields": [], "git": None, "extraction_status": []}) == \
        b'{"fields":[],"git":null,"extraction_status":[]}'


def test_depth_counts_containers_only() -> None:
    assert document._depth(5) == 0 and document._depth([]) == 1 and document._depth({"a": [1, {"b": []}]}) == 4
    assert document._depth([[[[]]], {}]) == 4


def test_equal_orders_are_listed_as_order_ties_says_then_by_name() -> None:
    overrides = {n: {"name": n, "order": 5} for n in ("a", "b", "c", "d")}
    listed = [r["name"] for r in build_document(overrides, [], None, GIT, "t0", ties=("c", "a"))["fields"]]
    assert listed == ["c", "a", "b", "d"]
    assert [r["name"] for r in build(overrides, [])["fields"]] == ["a", "b", "c", "d"]


def test_order_ties_are_set_in_the_config_text_keeping_the_rest() -> None:
    from fieldsync.rules.config import ORDER_TIES_NOTE, with_order_ties

    text = "# keep me\nkey: k\n"
    once = with_order_ties(text, ["predio", "setor"])
    assert once == f'# keep me\nkey: k\n{ORDER_TIES_NOTE}\norder_ties: ["predio", "setor"]\n'
    assert with_order_ties(once, ["setor"]).count("order_ties:") == 1
    assert with_order_ties(once, []) == text
