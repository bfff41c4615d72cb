"""rules/guards.py, rules/effective.py and rules/merge.py, branch by branch, with their boundaries."""

from __future__ import annotations

import pytest

from fieldsync.model import (
    DeletionBudget,
    Diff,
    DocumentSize,
    FieldChange,
    HandEdit,
    Lineage,
    Position,
    Rule,
    ServerStatus,
)
from fieldsync.rules import document, effective, guards, merge, schemas

OURS = "a" * 40
LIVE = "b" * 40
SEALED = document.seal({"fields": [], "git": {"commit": LIVE}})


# --- guards: where the live commit stands, and rollback -----------------------------------------------------------

@pytest.mark.parametrize("counts, lineage", [((0, 0), Lineage.SAME), ((2, 0), Lineage.BEHIND),
                                             ((0, 3), Lineage.AHEAD), ((1, 1), Lineage.DIVERGED)])
def test_position_from_the_commit_counts(counts: tuple[int, int], lineage: Lineage) -> None:
    where = guards.position(SEALED, OURS, counts)
    assert where == Position(lineage, LIVE, OURS, *counts)


def test_position_of_an_absent_a_foreign_and_an_unknown_document() -> None:
    assert guards.position(None, OURS, None) == Position(Lineage.ABSENT, None, OURS)
    assert guards.position({"fields": []}, OURS, (0, 0)) == Position(Lineage.FOREIGN, None, OURS)
    assert guards.position(SEALED, OURS, None) == Position(Lineage.UNKNOWN, LIVE, OURS)


def test_rollback_refuses_an_older_commit_and_an_unknown_one_only() -> None:
    ahead = guards.rollback(Position(Lineage.AHEAD, LIVE, OURS, 0, 1))
    assert ahead == "the live document was built from bbbbbbbbbbbb, which is newer than aaaaaaaaaaaa"
    assert guards.rollback(Position(Lineage.UNKNOWN, LIVE, OURS)) == (
        "the live document was built from commit bbbbbbbbbbbb, which this repository does not have; fetch it first, "
        "so that an older revision is not written over a newer one")
    assert guards.rollback(Position(Lineage.DIVERGED, LIVE, OURS, 1, 2)) == (
        "the live document was built from bbbbbbbbbbbb, which is not in the history of aaaaaaaaaaaa (the history was "
        "rewritten, by a force-push say: writing would drop what it held)")
    for lineage in (Lineage.SAME, Lineage.BEHIND, Lineage.FOREIGN, Lineage.ABSENT):
        assert guards.rollback(Position(lineage, LIVE, OURS)) is None


# --- guards: drift and hand edits ---------------------------------------------------------------------------------

CHANGED = Diff(changed=[FieldChange("company", {"display_name": ("A", "B")})])
DERIVED = Diff(changed=[FieldChange("company", {"not_an_attribute": ("A", None)})],
               refreshed=[FieldChange("company", {"regex": ("x", "(.*)")})])


def test_overwrites_counts_removals_and_chosen_attributes_only() -> None:
    assert guards.overwrites(CHANGED)
    assert guards.overwrites(Diff(removed=["company"]))
    assert not guards.overwrites(Diff(added=["company"]))
    assert not guards.overwrites(DERIVED)


def test_edited_outside_is_an_unsealed_document() -> None:
    assert not guards.edited_outside(None)
    assert not guards.edited_outside(SEALED)
    assert guards.edited_outside({**SEALED, "fields": [{"name": "x"}]})


def test_drift_needs_both_an_outside_edit_and_an_overwrite() -> None:
    edited = {**SEALED, "fields": [{"name": "x"}]}
    assert guards.drift(edited, CHANGED) == ("the live document was changed outside fieldsync since fieldsync wrote "
                                            "it; syncing would overwrite it")
    assert guards.drift(SEALED, CHANGED) is None
    assert guards.drift(edited, DERIVED) is None


EDIT = HandEdit("company", "display_name", "Company", "By Hand", "Company")


@pytest.mark.parametrize("policy, overwritten, base_known, diff, refuses", [
    ("keep", [], True, CHANGED, None),
    ("keep", [EDIT], True, CHANGED, None),  # keep holds a conflict's live value: it never refuses over one
    ("keep", [], False, CHANGED, "cannot tell hand edits apart"),
    ("keep", [], False, DERIVED, None),
    ("refuse", [EDIT], True, CHANGED, "syncing would overwrite 1 hand edit(s): company.display_name (by hand "
                                      "'By Hand', in git 'Company')"),
    ("refuse", [], True, CHANGED, None),  # a job's rewrite, or a stale copy: no person's edit
    ("refuse", [], False, CHANGED, "changed outside fieldsync"),
    ("revert", [EDIT], False, CHANGED, None),
])
def test_the_drift_policies_verdicts(policy: str, overwritten: list[HandEdit], base_known: bool, diff: Diff,
                                     refuses: str | None) -> None:
    edited = {**SEALED, "fields": [{"name": "x"}]}
    verdict = guards.hand_edits(policy, edited, diff, overwritten, base_known)
    assert (verdict is None) == (refuses is None), verdict
    assert refuses is None or refuses in verdict


def test_the_refusals_say_what_and_the_way_out() -> None:
    assert guards.hand_edits("refuse", None, CHANGED, [EDIT, EDIT]) == (
        "syncing would overwrite 2 hand edit(s): company.display_name (by hand 'By Hand', in git 'Company'), "
        "company.display_name (by hand 'By Hand', in git 'Company'); take them into git with `fieldsync import "
        "--from-kv`, or overwrite them with --force")
    assert guards.hand_edits("keep", None, CHANGED, [], base_known=False) == (
        "cannot tell hand edits apart: the commit the live document names is not in this clone, so what was "
        "changed by hand is unknown; fetch it, or write over whatever was changed with --force")
    assert guards.hand_edits("keep", None, CHANGED, []) is None  # the base is known unless said otherwise


def test_a_long_listing_is_cut_at_ten() -> None:
    edits = [HandEdit(f"f{n}", "order", 1, n, 1) for n in range(12)]
    verdict = guards.hand_edits("refuse", None, CHANGED, edits)
    assert verdict is not None and "f9.order" in verdict and "f10.order" not in verdict and "and 2 more" in verdict
    exact = guards.hand_edits("refuse", None, CHANGED, edits[:10])
    assert exact is not None and exact.endswith("f9.order (by hand 9, in git 1); take them into git with "
                                                 "`fieldsync import --from-kv`, or overwrite them with --force")


# --- guards: deletions, size, contract ---------------------------------------------------------------------------

@pytest.mark.parametrize("removed, live, budget, refuses", [
    (10, 40, DeletionBudget(0.25, 10), False),  # at both limits
    (11, 100, DeletionBudget(0.25, 10), True),  # over the count
    (3, 11, DeletionBudget(0.25, 10), True),  # over the fraction
    (3, 12, DeletionBudget(0.25, 10), False),
    (0, 0, DeletionBudget(0.0, 0), False),
])
def test_the_deletion_budget_boundaries(removed: int, live: int, budget: DeletionBudget, refuses: bool) -> None:
    names = [f"f{n:02}" for n in range(removed)]
    verdict = guards.deletions(names, live, budget)
    assert (verdict is not None) == refuses
    if verdict:
        assert f"remove {removed} of {live} fields" in verdict and f"{budget.fraction:.0%}" in verdict
        assert f"at most {budget.count}" in verdict


def test_a_long_deletion_list_is_cut_at_twenty() -> None:
    verdict = guards.deletions([f"f{n:02}" for n in range(21)], 21, DeletionBudget(0.25, 10))
    assert verdict is not None and "f18, f19 …" in verdict and "f20" not in verdict
    twenty = guards.deletions([f"f{n:02}" for n in range(20)], 20, DeletionBudget(0.25, 10))
    assert twenty is not None and "f18, f19)" in twenty and "…" not in twenty
    assert guards.deletions(["a", "b"], 2, DeletionBudget(0.25, 10)) == (
        "syncing would remove 2 of 2 fields (a, b), more than the deletion budget allows (25% of the live fields, at "
        "most 10); a server may have answered with a partial config: check with `fieldsync extract`, and remove them "
        "on purpose with --allow-delete")


def test_size_refuses_only_over_consuls_limit() -> None:
    limit = document.CONSUL_VALUE_LIMIT
    assert guards.size(limit) is None
    assert guards.size(limit + 1) == f"the document is {limit + 1:,} bytes, over Consul's {limit:,} byte value limit"


def test_size_headroom_warns_above_eighty_percent_and_errors_above_the_limit() -> None:
    limit = document.CONSUL_VALUE_LIMIT
    assert guards.size_headroom(DocumentSize(int(limit * 0.8), 10, 1)) is None
    warning = guards.size_headroom(DocumentSize(int(limit * 0.8) + 1, 10, 1))
    assert warning == ("warning", "the document would be 419,431 bytes, 80% of Consul's 524,288 byte value limit "
                                  "(over 80%); few fields are left")
    assert guards.size_headroom(DocumentSize(limit, 10, 1, estimate=True)) == (
        "warning", "the document would be about 524,288 bytes, 100% of Consul's 524,288 byte value limit (over "
                   "80%); few fields are left")
    assert guards.size_headroom(DocumentSize(limit, 10, 1))[0] == "warning"
    error = guards.size_headroom(DocumentSize(limit + 1, 10, 1))
    assert error is not None and error[0] == "error" and "every sync would fail" in error[1]


def test_room_is_how_many_more_average_fields_fit_under_the_limit() -> None:
    limit = document.CONSUL_VALUE_LIMIT
    assert guards.room(DocumentSize(limit // 4, 100, 20)) == 300
    assert guards.room(DocumentSize(limit // 4 + 1, 100, 20)) == 299  # rounded down: it errs low
    assert guards.room(DocumentSize(limit, 100, 20)) == 0
    assert guards.room(DocumentSize(limit + 5000, 100, 20)) == 0
    assert guards.room(DocumentSize(900, 0, 3)) is None


def test_contract_names_the_first_breach_at_the_top_level_too() -> None:
    reason = guards.contract({})
    assert reason is not None and "at the top level" in reason and "schema/document.schema.json" in reason


# --- effective: what a record's attribute means to the old UI --------------------------------------------------

BASE = effective.baseline("cost_center")


def test_the_baseline_is_the_schema_defaults_with_a_display_name() -> None:
    assert {**schemas.field_defaults(), "display_name": "Cost Center"} == BASE


@pytest.mark.parametrize("record, attribute, expected", [
    ({}, "enabled", False), ({"enabled": None}, "enabled", False), ({"enabled": "true"}, "enabled", False),
    ({"enabled": True}, "enabled", True), ({}, "show_in_filter", False), ({}, "available_for_registration", False),
    ({}, "show_in_blackbox", True), ({"show_in_blackbox": False}, "show_in_blackbox", False),
    ({}, "order", 999), ({}, "display_name", "Cost Center"), ({"options": None}, "options", []),
    ({"validation": None}, "validation", {}), ({"description": None}, "description", ""),
    ({"placeholder": None}, "placeholder", ""), ({"validation_regex": None}, "validation_regex", ""),
    ({"default_value": None}, "default_value", None), ({"order": None}, "order", None),
    ({"display_name": None}, "display_name", None), ({"category": "x"}, "category", "x"),
])
def test_effective_reads_as_the_old_ui_reads(record: dict, attribute: str, expected: object) -> None:
    assert effective.effective(record, attribute, BASE) == expected


def test_chosen_is_what_differs_from_the_baseline() -> None:
    record = {"name": "cost_center", "display_name": "Cost Center", "order": 3, "enabled": True,
              "show_in_filter": True, "available_for_registration": True, "options": None}
    assert effective.chosen(record) == {"order": 3, "show_in_dashboard": True}  # a missing page flag shows it
    assert effective.chosen({**record, "show_in_dashboard": False}) == {"order": 3}
    assert effective.chosen({"name": "cost_center", "show_in_dashboard": False}) == {
        "enabled": False, "show_in_filter": False, "available_for_registration": False}


def test_ignored_lists_keys_that_are_neither_attributes_nor_derived() -> None:
    record = {"name": "x", "order": 1, "regex": None, "discovered_in": [], "zeta": 1, "alpha": 2}
    assert effective.ignored(record) == ["alpha", "zeta"]


# --- merge: defaults under extraction under YAML ----------------------------------------------------------------

def test_display_name_from_the_name() -> None:
    assert merge.display_name("cost_center") == "Cost Center"
    assert merge.display_name("__x__") == "X"
    assert merge.display_name("_") == "_"


def _status(name: str, ok: bool, *rules: Rule) -> ServerStatus:
    return ServerStatus(name, f"http://{name}", ok, None if ok else "down", 1, {}, rules)


def test_discover_first_server_wins_and_every_server_is_named() -> None:
    a, b = Rule("env", "__meta_a", "(.*)", "$1"), Rule("env", "__meta_b", "x", "y")
    found = merge.discover([_status("p1", True, a), _status("p2", True, b)])
    assert found["env"].rule == a and found["env"].servers == ("p1", "p2")


def test_discover_carries_over_what_only_a_failed_server_had() -> None:
    live = [{"name": "site", "source_label": "__meta_site", "regex": None, "replacement": None},
            {"name": "cost", "source_label": None, "regex": "([A-Z]+)-.*", "replacement": "$1"},
            {"name": "env", "source_label": "__meta_env"}, {"name": "lonely"}]
    carried = {"p2": ["site", "cost", "env", "no_record"]}
    found = merge.discover([_status("p1", True, Rule("env", "__meta_a", "(.*)", "$1")), _status("p2", False)],
                           carried, live)
    assert found["site"].rule == Rule("site", "__meta_site", "", "") and found["site"].servers == ("p2",)
    assert found["cost"].rule == Rule("cost", "", "([A-Z]+)-.*", "$1")
    assert found["env"].servers == ("p1", "p2") and found["env"].rule.source_label == "__meta_a"
    assert "lonely" not in found and "no_record" not in found


def test_merge_layers_defaults_extraction_and_yaml_in_order() -> None:
    discovered = merge.discover([_status("p1", True, Rule("env", "__meta_env", "(.*)", "$1"))])
    overrides = {"env": {"name": "env", "display_name": "Ambiente", "order": 2},
                 "site": {"name": "site", "order": 1}}
    records = merge.merge(overrides, discovered, {"order": 999, "required": False}, ["name", "display_name", "order",
                                                                                     "required"])
    assert records == [
        {"name": "site", "display_name": "Site", "order": 1, "required": False, "source_label": "", "regex": None,
         "replacement": None},
        {"name": "env", "display_name": "Ambiente", "order": 2, "required": False, "source_label": "__meta_env",
         "regex": "(.*)", "replacement": "$1"},
    ]


def test_merge_does_not_share_defaults_between_records() -> None:
    defaults = {"order": 1, "validation": {}}
    records = merge.merge({"a": {"name": "a"}, "b": {"name": "b"}}, {}, defaults, ["name", "order", "validation"])
    records[0]["validation"]["x"] = 1
    assert records[1]["validation"] == {} and defaults["validation"] == {}


def test_merge_does_not_share_values_with_the_field_files() -> None:
    overrides = {"a": {"name": "a", "validation": {"min_length": 1}}}
    records = merge.merge(overrides, {}, {"order": 1}, ["name", "order", "validation"])
    records[0]["validation"]["min_length"] = 9
    assert overrides["a"]["validation"] == {"min_length": 1}


@pytest.mark.parametrize("value, expected", [(3, 3), (2.5, 2.5), (0, 0), (None, 999), ("first", 999), (True, 999)])
def test_an_order_that_is_no_number_sorts_where_no_order_does(value: object, expected: float) -> None:
    assert merge.sort_order(value) == expected


def test_merge_sorts_records_whose_order_is_no_number() -> None:
    overrides = {"a": {"name": "a", "order": None}, "b": {"name": "b", "order": 1000}, "c": {"name": "c", "order": 5}}
    assert [r["name"] for r in merge.merge(overrides, {}, {"order": 999}, ["name", "order"])] == ["c", "a", "b"]
