"""The old system's backend jobs that write the fields document (CONTRACT.md): which one wrote it last, and which
changes are that job's doing rather than a person's.

A job leaves its name in `source` (or in the envelope's `meta`); the old UI's edit keeps `source` as it was. So a
document fieldsync wrote (`source: fieldsync`) names a job only after a job rewrote it, possibly with UI edits since.
The jobs' changes have a shape no person's edit needs: startup prewarm and force-extract merge a fresh extraction
into the stored records, keeping display settings but setting every other attribute of an extracted record back to
what the extractor produces (`field_type` inferred from the name, `options` empty, attributes it does not know
dropped); a refill (the backup restore, or a first population of an empty key) holds nothing anyone typed since.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..model import Document, Job, JobWrite
from .effective import baseline

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
    return value == (inferred_type(name) if attribute == "field_type" else baseline(name).get(attribute))


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
                "changed; turn that job off in the old backend (see README, 'Old backend jobs')")
    return (f"the old backend's {job} was the last job to write the live document (edits in its UI keep that "
            "source, so people may have edited it since): turn that job off before adopting (see README, "
            "'Old backend jobs')")
