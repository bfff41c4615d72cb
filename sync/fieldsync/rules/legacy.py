"""The old system's backend jobs that write the fields document, known by the `source` value (or the envelope's
`meta.updated_by`) they leave. Its UI's edit keeps `source` as it was, so a document fieldsync wrote keeps
"fieldsync" through UI edits and changes it only when one of these jobs rewrites it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..model import Document
from .document import built_from

PREWARM = "startup prewarm"
EXTRACTION = "force-extract / empty-key fallback"
JOBS = {
    "prewarm_startup": PREWARM, "prewarm_startup_initial": PREWARM, "startup_prewarm_initial": PREWARM,
    "prewarm_update_with_merge": PREWARM,
    "extraction_with_merge": EXTRACTION, "auto_sync_from_extraction": EXTRACTION, "prometheus_sync": EXTRACTION,
    "orphan_cleanup": "orphan cleanup",
}


def old_backend_job(doc: Document, meta: Mapping[str, Any]) -> str | None:
    """Which of the old backend's jobs wrote the document last, if one did."""
    for value in (meta.get("updated_by"), doc.get("source")):
        if isinstance(value, str) and value in JOBS:
            return f"{JOBS[value]} (source '{value}')"
    return None


def rewrite_note(doc: Document | None, meta: Mapping[str, Any]) -> str | None:
    """A note naming the old backend's job that wrote the live document, with the way out."""
    job = old_backend_job(doc, meta) if doc is not None else None
    if job is None:
        return None
    if built_from(doc):
        return (f"the live document was rewritten by the old backend's {job} after fieldsync wrote it: turn that job "
                "off in the old backend (see README, 'Old backend jobs'); `--drift revert` takes git's values back")
    return (f"the live document was written by the old backend's {job}: turn that job off before adopting "
            "(see README, 'Old backend jobs')")
