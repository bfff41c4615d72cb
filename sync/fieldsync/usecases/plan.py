"""plan: the document a sync would write, against the live one, with every guard's verdict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from ..adapters.cache import Decoded
from ..adapters.consul import ConsulKV
from ..model import DEFAULT_BUDGET, DeletionBudget, Diff, Document, Inputs, Plan, ReaderChanges, ServerSpec, Written
from ..rules import document, guards, legacy, threeway
from ..rules.diff import diff_fields
from ..rules.effective import baseline, effective
from . import runlog
from .extract import Fetch, fetch
from .inputs import gather, observe, require_answers

LIVE: Decoded[document.Live] = Decoded()  # the live document, decoded once for as long as it stays as it was


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _rebuilt(live: Document | None, key: str, last: Written | None, restored: int) -> str | None:
    """A note on a key found absent or empty: what the rebuild restores from the run record, or that it cannot."""
    if live is not None:
        return None
    if last is None:
        return (f"{key} is empty: built from git (no run record keeps hand edits pending from before; were it wiped "
                "too, find them on the hand-edits branch)")
    return f"{key} is empty: rebuilt from git and the {restored} hand edit(s) pending in the run record"


def prepare(repo: Any, inputs: Inputs, kv: ConsulKV, key: str, now: str, policy: str = "keep",
            budget: DeletionBudget = DEFAULT_BUDGET, force: bool = False,
            state_prefix: str = "fieldsync/") -> Plan:
    """Read the live document and the run record, and judge what writing the inputs over them would do under the
    drift `policy` (with `force`, git wins over conflicts under keep)."""
    raw, index = kv.read(key)
    live, meta, sealed = LIVE.get(key, raw, lambda: document.read_live(raw, key))
    last = runlog.written(runlog.read(kv, key, state_prefix)[0])
    seen = observe(repo, live, meta, last, inputs.git.commit, inputs.overrides, now, sealed)
    kept, conflicts = threeway.reconcile(seen.pending, inputs.overrides, seen.deleted)
    if policy == "keep":
        held, overwritten = kept + ([] if force else conflicts), (conflicts if force else [])
    else:
        held, overwritten = [], kept + conflicts
    doc = document.build_document(inputs.overrides, inputs.statuses, live, inputs.git, now, held, inputs.order_ties)
    records = {r["name"]: r for r in doc["fields"]}
    rewrites = tuple(replace(r, restored=effective(records[r.field], r.attribute, baseline(r.field)))
                     for r in seen.rewrites if r.field in records)
    live_fields = (live or {}).get("fields") or []
    # Same content hash, and the live document's hash is its own: the same content, so nothing differs.
    unchanged = sealed and live is not None and live.get("content_hash") == doc["content_hash"]
    diff = Diff() if unchanged else diff_fields(live_fields, doc["fields"])
    return Plan(key, inputs, live, index, doc, diff, seen.where, unchanged=unchanged,
                rollback=guards.rollback(seen.where),
                drift=guards.hand_edits(policy, live, diff, overwritten, seen.base_known),
                policy=policy, kept=tuple(kept) if policy == "keep" else (), conflicts=tuple(conflicts),
                overwritten=tuple(overwritten),
                base_unknown=None if seen.base_known else guards.rollback(seen.where),
                rewritten_by=legacy.rewrite_note(legacy.last_job(live, meta), seen.job is not None),
                job=seen.job if rewrites else None,
                job_rewrites=rewrites, written=Written(inputs.git.commit, doc["content_hash"], tuple(held)),
                recorded=last,
                rebuilt=_rebuilt(live, key, last, len(held)),
                deletion=guards.deletions(diff.removed, len(live_fields), budget),
                value=raw if unchanged and raw is not None else document.encode(doc),  # unchanged: what stays
                readers=ReaderChanges() if unchanged else legacy.reader_changes(live, doc))


def plan(*, repo: str, key: str, servers: Sequence[ServerSpec], kv: ConsulKV, rev: str = "HEAD",
         worktree: bool = False, policy: str = "keep", budget: DeletionBudget = DEFAULT_BUDGET,
         state_prefix: str = "fieldsync/", order_ties: Sequence[str] = (), fetch: Fetch = fetch) -> Plan:
    """What `sync --rev REV` would change (with `worktree`, what it would change were the files on disk committed)."""
    repository, inputs = gather(repo, rev, servers, fetch, worktree, order_ties)
    require_answers(inputs)
    return prepare(repository, inputs, kv, key, utc_now(), policy, budget, state_prefix=state_prefix)
