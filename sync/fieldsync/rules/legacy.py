"""The old system's backend jobs that write the fields document (CONTRACT.md): which one wrote it last, and which
changes are that job's doing rather than a person's.

A job leaves its name in `source` (or in the envelope's `meta`); the old UI's edit keeps `source` as it was. So a
document fieldsync wrote (`source: fieldsync`) names a job only after a job rewrote it, possibly with UI edits since.
The jobs' changes have a shape no person's edit needs: startup prewarm and force-extract merge a fresh extraction
into the stored records, keeping display settings but setting every other attribute of an extracted record back to
what the extractor produces (`field_type` inferred from the name, `options` empty, attributes it does not know
dropped); a refill (the backup restore, or a first population of an empty key) holds nothing anyone typed since.

Also here: what the old system's readers show beyond field attributes ("discovered in", each site's external labels,
the listing order), and how `init` finds which of its server_status[] entries each server is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from ..model import Document, Job, JobWrite, MatchedBy, ReaderChanges, ServerMatch, ServerSpec, ServerStatus
from .config import port_of
from .document import entry_fields
from .effective import baseline_of
from .merge import sort_order

DESCRIPTIONS = {
    Job.PREWARM: "startup prewarm",
    Job.EXTRACTION: "force-extract / empty-key fallback",
    Job.RESTORE: "backup restore",
    Job.ORPHAN_CLEANUP: "orphan cleanup",
}
# source value -> (job, whether it fills an empty key)
SOURCES = {
    "prewarm_startup": (Job.PREWARM, False), "prewarm_update_with_merge": (Job.PREWARM, False),
    "prewarm_startup_initial": (Job.PREWARM, True), "startup_prewarm_initial": (Job.PREWARM, True),
    "extraction_with_merge": (Job.EXTRACTION, False), "auto_sync_from_extraction": (Job.EXTRACTION, False),
    "prometheus_sync": (Job.EXTRACTION, False), "initial_extraction": (Job.EXTRACTION, True),
    "orphan_cleanup": (Job.ORPHAN_CLEANUP, False),
}
RESTORE_MARKS = ("restored_from_backup", "restored_from_history")  # what its restore puts in the envelope's meta
# What its merge keeps of a stored record (everything else of an extracted record is the extractor's).
KEPT_BY_MERGE = frozenset({
    "display_name", "required", "auto_register", "category", "order", "description", "editable", "enabled",
    "available_for_registration", "validation_regex", "validation", "default_value", "placeholder",
    "show_in_table", "show_in_dashboard", "show_in_form", "show_in_filter", "show_in_services", "show_in_exporters",
    "show_in_blackbox", "show_in_network_probes", "show_in_web_probes", "show_in_system_exporters",
    "show_in_database_exporters", "show_in_infrastructure_exporters", "show_in_hardware_exporters",
})
INFERRED_SELECT = frozenset({"env", "module", "os", "region", "datacenter"})  # its extractor's guess by name


def last_job(doc: Document | None, meta: Mapping[str, Any]) -> JobWrite | None:
    """The old backend's job that wrote the document last, if one did: a restore by its mark in the envelope, else
    the job `source` names (its writes put it in the envelope's meta too)."""
    if doc is None:
        return None
    for mark in RESTORE_MARKS:
        if meta.get(mark) is True:
            return JobWrite(Job.RESTORE, mark, refill=True)
    for value in (doc.get("source"), meta.get("source"), meta.get("updated_by")):
        if isinstance(value, str) and value in SOURCES:
            job, refill = SOURCES[value]
            return JobWrite(job, value, refill)
    return None


def inferred_type(name: str) -> str:
    """The field_type the old extractor gives a field by its name."""
    return "select" if name in INFERRED_SELECT else "string"


def rewrote(write: JobWrite, name: str, attribute: str, value: Any, extracted: bool) -> bool:
    """Whether `value` of a record's `attribute` is what `write`'s job leaves there (`extracted`: the record holds a
    source label, as the old extractor fills one in). A refill accounts for every value; a merge for an attribute it
    does not keep set to the extractor's value; `value` is read as the old UI reads it (effective)."""
    if write.refill:
        return True
    if write.job is Job.ORPHAN_CLEANUP or not extracted or attribute in KEPT_BY_MERGE:
        return False
    return value == (inferred_type(name) if attribute == "field_type" else baseline_of(name, attribute))


def describe(write: JobWrite) -> str:
    return f"{DESCRIPTIONS[write.job]} (source '{write.named_by}')"


def rewrite_note(write: JobWrite | None, after_fieldsync: bool) -> str | None:
    """A note naming the old backend's job that last wrote the live document, with the way out; `after_fieldsync`:
    fieldsync had written the key before it."""
    if write is None:
        return None
    job = describe(write)
    if after_fieldsync:
        return (f"the old backend's {job} rewrote the live document after fieldsync wrote it: sync repairs what it "
                "changed; turn that job off in the old backend (see docs/how-to/workflows.md, 'Old backend jobs')")
    return (f"the old backend's {job} was the last job to write the live document (edits in its UI keep that "
            "source, so people may have edited it since): turn that job off before adopting (see "
            "docs/how-to/workflows.md, 'Old backend jobs')")


# --- what its readers show ----------------------------------------------------------------------------------------

def _entries(doc: Document | None) -> list[dict[str, Any]]:
    status = (doc or {}).get("extraction_status")
    entries = status.get("server_status") if isinstance(status, dict) else None
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def discovered_in(doc: Document | None) -> dict[str, tuple[str, ...]]:
    """"Discovered in", as its reader recomputes it: each entry's hostname, for every field the entry lists; an
    entry without a hostname adds nothing."""
    found: dict[str, list[str]] = {}
    for entry in _entries(doc):
        host = entry.get("hostname")
        if isinstance(host, str) and host:
            for name in entry_fields(entry):
                if host not in found.setdefault(name, []):
                    found[name].append(host)
    return {name: tuple(hosts) for name, hosts in found.items()}


def site_labels(doc: Document | None) -> dict[str, dict[str, str]]:
    """Each site's external labels, looked up by hostname as its reader does."""
    return {e["hostname"]: dict(e.get("external_labels") or {}) for e in _entries(doc)
            if isinstance(e.get("hostname"), str) and e["hostname"]}


def listing(doc: Document | None) -> list[str]:
    """The fields as its list endpoint returns them: a stable sort by `order` (equal orders keep document order)."""
    records = [r for r in (doc or {}).get("fields") or [] if isinstance(r, dict)]
    return [str(r.get("name")) for r in sorted(records, key=lambda r: sort_order(r.get("order")))]


def reader_changes(before: Document | None, after: Document) -> ReaderChanges:
    """What its readers show differently after a write, for the fields and sites both documents have; a field
    "moves" when its place among the fields whose `order` stayed changes (a change of `order` is a change of
    that field already)."""
    was, now = discovered_in(before), discovered_in(after)
    names = {r["name"] for r in (before or {}).get("fields") or []} & {r["name"] for r in after["fields"]}
    discovered = {n: (was.get(n, ()), now.get(n, ())) for n in sorted(names)
                  if sorted(was.get(n, ())) != sorted(now.get(n, ()))}
    labels_before, labels_after = site_labels(before), site_labels(after)
    labels = {h: (labels_before.get(h), labels_after.get(h)) for h in sorted(labels_before.keys() | labels_after)
              if labels_before.get(h) != labels_after.get(h)}
    orders = [{str(r.get("name")): r.get("order") for r in doc["fields"]} for doc in (before or {"fields": []}, after)]
    kept = {n for n in names if orders[0][n] == orders[1][n]}  # a field whose order changed moves by that change
    old_order, new_order = ([n for n in listing(doc) if n in kept] for doc in (before, after))
    return ReaderChanges(discovered, labels, tuple(n for i, n in enumerate(old_order) if new_order[i] != n))


def order_ties(doc: Document | None) -> tuple[str, ...]:
    """The fields of each group of equal `order` in the order its reader lists them, where that is not by name:
    what fieldsync.yaml's `order_ties` records so that git lists them the same."""
    listed = listing(doc)
    orders = {str(r.get("name")): r.get("order") for r in (doc or {}).get("fields") or [] if isinstance(r, dict)}
    groups: dict[Any, list[str]] = {}
    for name in listed:
        groups.setdefault(repr(orders.get(name)), []).append(name)
    return tuple(n for group in groups.values() if group != sorted(group) for n in group)


# --- which server is which ----------------------------------------------------------------------------------------

def _tiers(server: ServerSpec, status: ServerStatus | None) -> list[tuple[MatchedBy, Callable[[Mapping[str, Any]],
                                                                                              bool]]]:
    host = urlsplit(server.url or "").hostname
    labels = status.external_labels if status is not None and status.success else {}
    names = {r.name for r in status.rules} if status is not None and status.success else set()
    return [
        (MatchedBy.ADDRESS_AND_PORT, lambda e: bool(host) and e.get("hostname") == host
         and e.get("port") == port_of(server.url)),
        (MatchedBy.ADDRESS, lambda e: bool(host) and e.get("hostname") == host),
        (MatchedBy.LABELS_AND_FIELDS, lambda e: bool(labels) and bool(names) and e.get("external_labels") == labels
         and set(entry_fields(e)) == names),
        (MatchedBy.LABELS, lambda e: bool(labels) and e.get("external_labels") == labels),
        (MatchedBy.FIELDS, lambda e: bool(names) and set(entry_fields(e)) == names),
    ]


def match_servers(doc: Document | None, servers: Sequence[tuple[ServerSpec, ServerStatus | None]]
                  ) -> tuple[list[ServerMatch], list[str]]:
    """(which hostname of the live document each server is, the hostnames no server matched). Tried in order: the
    URL's address and port, its address alone (the old system reads configs over SSH, port 22), then what the server
    reports: its external labels and fields, its labels, its fields. A tier matches only one-to-one."""
    entries = [e for e in _entries(doc) if isinstance(e.get("hostname"), str) and e["hostname"]]
    tiers = {server.name: _tiers(server, status) for server, status in servers}
    matched: dict[str, ServerMatch] = {}
    taken: set[int] = set()
    for tier in range(len(MatchedBy)):
        found = {name: [i for i, e in enumerate(entries) if i not in taken and tests[tier][1](e)]
                 for name, tests in tiers.items() if name not in matched}
        for name, candidates in found.items():
            if len(candidates) == 1 and sum(candidates[0] in c for c in found.values()) == 1:
                matched[name] = ServerMatch(name, entries[candidates[0]]["hostname"], tiers[name][tier][0])
                taken.add(candidates[0])
    matches = [matched.get(s.name, ServerMatch(s.name, None)) for s, _ in servers]
    return matches, [e["hostname"] for i, e in enumerate(entries) if i not in taken]
