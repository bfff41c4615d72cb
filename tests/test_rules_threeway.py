"""rules/threeway.py and rules/legacy.py, branch by branch: who changed what since fieldsync wrote the document."""

from __future__ import annotations

import pytest

from fieldsync.model import HandEdit, Job, JobRewrite, JobWrite
from fieldsync.rules import legacy, threeway
from fieldsync.rules.effective import baseline
from fieldsync.rules.threeway import DELETED, Version

GIT = {"company": {"name": "company", "display_name": "Company", "field_type": "text"},
       "env": {"name": "env", "field_type": "select", "options": ["prod", "dev"]}}
PREWARM = JobWrite(Job.PREWARM, "prewarm_update_with_merge", refill=False)
REFILL = JobWrite(Job.EXTRACTION, "initial_extraction", refill=True)


def record(name: str, source_label: str = "", **values: object) -> dict:
    """A live record as fieldsync writes it: every attribute, at git's value unless `values` say otherwise."""
    return {**baseline(name), **GIT.get(name, {}), "name": name, "source_label": source_label, **values}


def edit(field: str, attribute: str, base: object, live: object, seen: str | None = "t0") -> HandEdit:
    return HandEdit(field, attribute, base, live, seen=seen)


# --- Version and the values a set of field files produces -----------------------------------------------------

def test_value_in_is_the_file_value_else_the_baseline() -> None:
    assert threeway.value_in(GIT, "company", "field_type") == "text"
    assert threeway.value_in(GIT, "company", "order") == 999
    assert threeway.value_in(GIT, "cost_center", "display_name") == "Cost Center"


def test_a_version_holds_its_edits_over_its_files() -> None:
    version = Version(GIT, (edit("company", "display_name", "Company", "By Hand"), edit("company", "order", 999, None)))
    assert version.value("company", "display_name") == "By Hand"
    assert version.value("company", "order") is None  # an edit to null is an edit
    assert version.value("company", "field_type") == "text"
    assert Version().value("env", "field_type") == "string"
    assert version == Version(GIT, version.held)


# --- observe --------------------------------------------------------------------------------------------------

def test_nothing_changed_since_the_ancestor_is_no_edit() -> None:
    pending, rewrites = threeway.observe([record("company"), record("env")], Version(GIT), [], None, "t1")
    assert (pending, rewrites) == ([], [])


def test_a_change_since_the_ancestor_is_a_hand_edit_against_the_ancestors_files() -> None:
    live = [record("company", display_name="Typed")]
    pending, rewrites = threeway.observe(live, Version(GIT), [], None, "t1")
    assert pending == [edit("company", "display_name", "Company", "Typed", "t1")] and rewrites == []


def test_a_value_the_old_ui_reads_the_same_way_is_no_change() -> None:
    live = [{**record("company"), "options": None, "placeholder": None}]  # null is unset, as the old UI reads it
    assert threeway.observe(live, Version(GIT), [], None, "t1") == ([], [])


def test_a_pending_edit_survives_a_copy_that_did_not_touch_it() -> None:
    """A stale copy written back (the old UI's cache): it started from an ancestor without the later edit."""
    later = edit("company", "display_name", "Company", "Later", "t0")
    live = [record("company"), record("env", description="Other edit")]
    pending, _ = threeway.observe(live, Version(GIT), [later], None, "t1")
    assert pending == [later, edit("env", "description", "", "Other edit", "t1")]


def test_a_pending_edit_of_a_field_the_live_document_lacks_survives() -> None:
    earlier = edit("company", "display_name", "Company", "Kept", "t0")
    assert threeway.observe([], Version(), [earlier], None, "t1") == ([earlier], [])


def test_a_pending_edit_seen_again_keeps_when_and_against_what_it_was_made() -> None:
    earlier = edit("company", "display_name", "Old Git Value", "Typed", "t0")
    live = [record("company", display_name="Typed")]
    assert threeway.observe(live, Version(GIT), [earlier], None, "t1")[0] == [earlier]


def test_changing_a_pending_edit_again_keeps_its_base() -> None:
    earlier = edit("company", "display_name", "Old Git Value", "Typed", "t0")
    live = [record("company", display_name="Typed Again")]
    ancestor = Version(GIT, (earlier,))
    assert threeway.observe(live, ancestor, [earlier], None, "t1")[0] == [
        edit("company", "display_name", "Old Git Value", "Typed Again", "t1")]


def test_setting_an_edit_back_to_its_base_ends_it() -> None:
    earlier = edit("company", "display_name", "Company", "Typed", "t0")
    assert threeway.observe([record("company")], Version(GIT, (earlier,)), [earlier], None, "t1") == ([], [])


def test_a_merge_jobs_reset_of_an_extracted_record_is_a_job_rewrite() -> None:
    live = [record("env", "__meta_env", options=None), record("company", "__meta_company", field_type="string")]
    pending, rewrites = threeway.observe(live, Version(GIT), [], PREWARM, "t1")
    assert pending == []
    assert rewrites == [JobRewrite("env", "options", []), JobRewrite("company", "field_type", "string")]


def test_a_job_rewrite_leaves_the_pending_edit_it_overwrote_pending() -> None:
    earlier = edit("company", "field_type", "text", "url", "t0")
    ancestor = Version(GIT, (earlier,))
    live = [record("company", "__meta_company", field_type="string")]
    pending, rewrites = threeway.observe(live, ancestor, [earlier], PREWARM, "t1")
    assert pending == [earlier] and rewrites == [JobRewrite("company", "field_type", "string")]


def test_what_no_job_writes_is_a_persons_edit_even_when_a_job_wrote() -> None:
    live = [record("company", "__meta_company", display_name="Typed", field_type="number")]
    pending, rewrites = threeway.observe(live, Version(GIT), [], PREWARM, "t1")
    assert {(e.attribute, e.live) for e in pending} == {("display_name", "Typed"), ("field_type", "number")}
    assert rewrites == []


def test_a_refill_accounts_for_every_change() -> None:
    earlier = edit("company", "display_name", "Company", "Typed", "t0")
    live = [record("company", display_name="Empresa", order=1)]
    pending, rewrites = threeway.observe(live, Version(GIT, (earlier,)), [earlier], REFILL, "t1")
    assert pending == [earlier]
    assert rewrites == [JobRewrite("company", "display_name", "Empresa"), JobRewrite("company", "order", 1)]


# --- reconcile ------------------------------------------------------------------------------------------------

def test_reconcile_keeps_what_git_left_alone_and_flags_what_git_changed_too() -> None:
    kept_edit = edit("company", "display_name", "Company", "Typed")
    conflict = edit("company", "field_type", "string", "url")  # git made it "text" since
    resolved = edit("env", "field_type", "string", "select")  # git made it what the person typed
    kept, conflicts = threeway.reconcile([kept_edit, conflict, resolved], GIT)
    assert kept == [HandEdit("company", "display_name", "Company", "Typed", "Company", "t0")]
    assert conflicts == [HandEdit("company", "field_type", "string", "url", "text", "t0")]


def test_an_edit_of_a_field_git_deleted_conflicts() -> None:
    gone = edit("site", "display_name", "Site", "Typed")
    assert threeway.git_value({}, frozenset({"site"}), "site", "order") == DELETED
    assert threeway.git_value({}, frozenset(), "site", "order") == 999
    assert threeway.reconcile([gone], {}, frozenset({"site"}))[1] == [
        HandEdit("site", "display_name", "Site", "Typed", DELETED, "t0")]


# --- legacy: the old backend's jobs ---------------------------------------------------------------------------

@pytest.mark.parametrize("doc, meta, expected", [
    ({"source": "prewarm_update_with_merge"}, {}, JobWrite(Job.PREWARM, "prewarm_update_with_merge", False)),
    ({"source": "prewarm_startup_initial"}, {}, JobWrite(Job.PREWARM, "prewarm_startup_initial", True)),
    ({"source": "initial_extraction"}, {"source": "extraction_with_merge"},
     JobWrite(Job.EXTRACTION, "initial_extraction", True)),
    ({"source": "fieldsync"}, {"source": "auto_sync_from_extraction"},
     JobWrite(Job.EXTRACTION, "auto_sync_from_extraction", False)),
    ({"source": "fieldsync"}, {"updated_by": "orphan_cleanup"}, JobWrite(Job.ORPHAN_CLEANUP, "orphan_cleanup", False)),
    ({"source": "prewarm_update_with_merge"}, {"restored_from_backup": True},
     JobWrite(Job.RESTORE, "restored_from_backup", True)),
    ({"source": "fieldsync"}, {"restored_from_history": True}, JobWrite(Job.RESTORE, "restored_from_history", True)),
    ({"source": "fieldsync"}, {"restored_from_backup": "yes"}, None),
    ({"source": "user_edit"}, {"updated_by": "system"}, None),
    ({"source": 5}, {}, None),
])
def test_last_job_names_the_job_from_the_restore_mark_then_source_then_meta(doc: dict, meta: dict,
                                                                          expected: JobWrite | None) -> None:
    assert legacy.last_job(doc, meta) == expected


def test_no_document_no_job() -> None:
    assert legacy.last_job(None, {"restored_from_backup": True}) is None


@pytest.mark.parametrize("name, expected", [("env", "select"), ("module", "select"), ("os", "select"),
                                            ("region", "select"), ("datacenter", "select"), ("company", "string")])
def test_the_extractor_infers_the_type_by_name(name: str, expected: str) -> None:
    assert legacy.inferred_type(name) == expected


@pytest.mark.parametrize("write, name, attribute, value, extracted, expected", [
    (PREWARM, "env", "field_type", "select", True, True),  # the inferred type
    (PREWARM, "company", "field_type", "string", True, True),
    (PREWARM, "company", "field_type", "select", True, False),  # not what it infers for company
    (PREWARM, "env", "options", [], True, True),  # options back to empty
    (PREWARM, "env", "options", ["a"], True, False),
    (PREWARM, "company", "icon", "", True, True),  # an attribute its extractor does not know: dropped
    (PREWARM, "company", "field_type", "string", False, False),  # an orphan is left as it was
    (PREWARM, "company", "display_name", "Company", True, False),  # kept by its merge
    (PREWARM, "company", "order", 999, True, False),
    (JobWrite(Job.ORPHAN_CLEANUP, "orphan_cleanup", False), "company", "field_type", "string", True, False),
    (JobWrite(Job.EXTRACTION, "extraction_with_merge", False), "env", "options", [], True, True),
    (REFILL, "company", "display_name", "Anything", False, True),
])
def test_rewrote_recognizes_each_jobs_shape(write: JobWrite, name: str, attribute: str, value: object,
                                           extracted: bool, expected: bool) -> None:
    assert legacy.rewrote(write, name, attribute, value, extracted) is expected


def test_the_merge_keeps_exactly_the_display_settings() -> None:
    from fieldsync.rules import schemas

    assert set(schemas.chosen_attributes()) > legacy.KEPT_BY_MERGE
    assert set(schemas.chosen_attributes()) - legacy.KEPT_BY_MERGE == {"field_type", "options", "icon", "color"}


def test_rewrite_notes_name_the_job_and_the_way_out() -> None:
    assert legacy.rewrite_note(None, True) is None
    assert legacy.rewrite_note(PREWARM, True) == (
        "the old backend's startup prewarm (source 'prewarm_update_with_merge') rewrote the live document after "
        "fieldsync wrote it: sync repairs what it changed; turn that job off in the old backend (see "
        "docs/how-to/workflows.md, 'Old backend jobs')")
    assert legacy.rewrite_note(REFILL, False) == (
        "the old backend's force-extract / empty-key fallback (source 'initial_extraction') was the last job to write "
        "the live document (edits in its UI keep that source, so people may have edited it since): turn that job off "
        "before adopting (see docs/how-to/workflows.md, 'Old backend jobs')")
    assert legacy.describe(JobWrite(Job.RESTORE, "restored_from_backup", True)) == \
        "backup restore (source 'restored_from_backup')"


# --- legacy: what its readers show, and which server is which --------------------------------------------------

def _doc(entries: list[dict], fields: list[tuple[str, object]] = ()) -> dict:
    return {"fields": [{"name": n, "order": o} for n, o in fields], "extraction_status": {"server_status": entries}}


def test_discovered_in_reads_names_and_objects_and_skips_entries_without_hostname() -> None:
    doc = _doc([{"hostname": "a", "fields": ["company", {"name": "env"}, {"nope": 1}, 5]},
                {"hostname": "b", "fields": [{"name": "company"}, "company"]},
                {"hostname": "", "fields": ["site"]}, {"fields": ["site"]}, {"hostname": 5, "fields": ["site"]},
                "junk"])
    assert legacy.discovered_in(doc) == {"company": ("a", "b"), "env": ("a",)}
    assert legacy.discovered_in(None) == {} and legacy.discovered_in({"extraction_status": []}) == {}
    assert legacy.site_labels(_doc([{"hostname": "a", "external_labels": {"dc": "x"}}, {"hostname": "b"},
                                    {"hostname": 5, "external_labels": {"dc": "y"}}])) == {"a": {"dc": "x"}, "b": {}}


def test_listing_is_a_stable_sort_by_order() -> None:
    doc = _doc([], [("z", 2), ("b", 1), ("a", 1), ("late", 1000), ("odd", None), ("flag", True), ("first", 0.5)])
    assert legacy.listing(doc) == ["first", "b", "a", "z", "odd", "flag", "late"]  # no order reads as 999
    assert legacy.order_ties(doc) == ("b", "a")  # "odd" and "flag" (999) are in name order already
    assert legacy.order_ties(_doc([], [("a", 1), ("b", 1)])) == ()


def test_reader_changes_name_discovery_labels_and_ties_not_order_changes() -> None:
    before = _doc([{"hostname": "172.16.1.26", "external_labels": {"site": "x"}, "fields": ["a", "b"]}],
                  [("a", 1), ("b", 1), ("c", 2), ("d", 5)])
    after = _doc([{"hostname": "prom:9090", "external_labels": {"site": "x"}, "fields": ["a", "b"]}],
                 [("b", 1), ("a", 1), ("d", 0), ("c", 2), ("new", 3)])
    changes = legacy.reader_changes(before, after)
    assert changes.discovered == {"a": (("172.16.1.26",), ("prom:9090",)), "b": (("172.16.1.26",), ("prom:9090",))}
    found = _doc([{"hostname": "h", "fields": ["c"]}], [("c", 2)])
    assert legacy.reader_changes(_doc([], [("c", 2)]), found).discovered == {"c": ((), ("h",))}
    assert legacy.reader_changes(found, _doc([], [("c", 2)])).discovered == {"c": (("h",), ())}
    assert changes.labels == {"172.16.1.26": ({"site": "x"}, None), "prom:9090": (None, {"site": "x"})}
    assert changes.moved == ("a", "b")  # d moved by its own order change
    assert legacy.reader_changes(before, before).empty and not changes.empty
    assert legacy.reader_changes(None, after).discovered == {}


def _server(name: str, url: str | None = None, labels: dict | None = None, fields: tuple[str, ...] = (),
            ok: bool = True) -> tuple:
    from fieldsync.model import Rule, ServerSpec, ServerStatus

    spec = ServerSpec(name=name, url=url, file=None if url else f"/etc/{name}")
    status = ServerStatus(name, url or "", ok, None, 0, labels or {}, tuple(Rule(f, "", "", "") for f in fields))
    return spec, status


def test_servers_are_matched_by_address_then_what_they_report() -> None:
    from fieldsync.model import MatchedBy, ServerMatch

    doc = _doc([
        {"hostname": "10.0.0.1", "port": 9090, "fields": []},
        {"hostname": "10.0.0.2", "port": 22, "fields": []},
        {"hostname": "palmas", "port": 22, "external_labels": {"dc": "p"}, "fields": ["a", "b"]},
        {"hostname": "rio", "port": 22, "external_labels": {"dc": "r"}, "fields": ["a"]},
        {"hostname": "genesis", "port": 22, "external_labels": {"dc": "g"}, "fields": ["x"]},
        {"hostname": "lost", "port": 22, "external_labels": {"dc": "l"}, "fields": ["y"]},
    ])
    servers = [_server("one", "http://10.0.0.1:9090"), _server("two", "http://10.0.0.2:9090"),
               _server("three", labels={"dc": "p"}, fields=("a", "b")), _server("four", labels={"dc": "r"}),
               _server("five", fields=("x",)), _server("six", labels={"dc": "zz"}, fields=("q",)),
               _server("down", "http://10.9.9.9:9090", labels={"dc": "l"}, fields=("y",), ok=False)]
    matches, unmatched = legacy.match_servers(doc, servers)
    assert matches == [ServerMatch("one", "10.0.0.1", MatchedBy.ADDRESS_AND_PORT),
                       ServerMatch("two", "10.0.0.2", MatchedBy.ADDRESS),
                       ServerMatch("three", "palmas", MatchedBy.LABELS_AND_FIELDS),
                       ServerMatch("four", "rio", MatchedBy.LABELS), ServerMatch("five", "genesis", MatchedBy.FIELDS),
                       ServerMatch("six", None), ServerMatch("down", None)]
    assert unmatched == ["lost"]


def test_an_entry_without_a_hostname_is_never_matched() -> None:
    doc = _doc([{"hostname": 5, "external_labels": {"dc": "x"}, "fields": ["f"]}])
    assert legacy.match_servers(doc, [_server("one", labels={"dc": "x"}, fields=("f",))])[0][0].hostname is None


def test_differences_between_two_sets_of_field_files() -> None:
    before = {"company": {"name": "company", "display_name": "Company"}}
    after = {"company": {"name": "company", "display_name": "Cliente", "order": 999},
             "env": {"name": "env", "order": 3}}
    assert threeway.differences(before, after) == [("company", "display_name", "Cliente"), ("env", "order", 3)]
    assert threeway.differences(after, after) == []


def test_an_ambiguous_match_is_no_match() -> None:
    doc = _doc([{"hostname": "a", "external_labels": {"dc": "x"}, "fields": ["f"]},
                {"hostname": "b", "external_labels": {"dc": "x"}, "fields": ["f"]}])
    matches, unmatched = legacy.match_servers(doc, [_server("one", labels={"dc": "x"}, fields=("f",))])
    assert [m.hostname for m in matches] == [None] and unmatched == ["a", "b"]
    twins = [_server("one", labels={"dc": "x"}, fields=("f",)), _server("two", labels={"dc": "x"}, fields=("f",))]
    single = _doc([{"hostname": "a", "external_labels": {"dc": "x"}, "fields": ["f"]}])
    assert [m.hostname for m in legacy.match_servers(single, twins)[0]] == [None, None]
