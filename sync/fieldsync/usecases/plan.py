"""plan: the document a sync would write, against the live one, with every guard's verdict."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from ..adapters.consul import ConsulKV
from ..model import DEFAULT_BUDGET, DeletionBudget, Inputs, Plan, ServerSpec
from ..rules import document, guards, legacy, threeway
from ..rules.diff import diff_fields
from .extract import Fetch, fetch
from .inputs import base_overrides, gather, locate, require_answers


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def prepare(repo: Any, inputs: Inputs, kv: ConsulKV, key: str, now: str, policy: str = "keep",
            budget: DeletionBudget = DEFAULT_BUDGET) -> Plan:
    """Read the live document and judge what writing the inputs over it would do under the drift `policy`."""
    raw, index = kv.read(key)
    live, meta = document.decode_with_meta(raw, key)
    where = locate(repo, live, inputs.git.commit)
    base = base_overrides(repo, where)
    live_fields = (live or {}).get("fields") or []
    edits = threeway.hand_edits(live_fields, base) if base is not None else []
    kept, conflicts = threeway.reconcile(edits, base or {}, inputs.overrides)
    overrides = threeway.with_edits(inputs.overrides, kept) if policy == "keep" else inputs.overrides
    overwritten = conflicts if policy == "keep" else kept + conflicts  # the edits whose value the write replaces
    doc = document.build_document(overrides, inputs.statuses, live, inputs.git, now)
    diff = diff_fields(live_fields, doc["fields"])
    return Plan(key, inputs, live, index, doc, diff, where,
                unchanged=document.content(live) == document.content(doc),
                rollback=guards.rollback(where),
                drift=guards.hand_edits(policy, live, diff, conflicts, overwritten, base is not None),
                policy=policy, kept=tuple(kept) if policy == "keep" else (), conflicts=tuple(conflicts),
                overwritten=tuple(overwritten),
                base_unknown=None if base is not None else guards.rollback(where),
                rewritten_by=legacy.rewrite_note(live, meta),
                deletion=guards.deletions(diff.removed, len(live_fields), budget),
                value=document.encode(doc))


def plan(*, repo: str, key: str, servers: Sequence[ServerSpec], kv: ConsulKV, rev: str = "HEAD",
         worktree: bool = False, policy: str = "keep", budget: DeletionBudget = DEFAULT_BUDGET,
         fetch: Fetch = fetch) -> Plan:
    """What `sync --rev REV` would change (with `worktree`, what it would change were the files on disk committed)."""
    repository, inputs = gather(repo, rev, servers, fetch, worktree)
    require_answers(inputs)
    return prepare(repository, inputs, kv, key, utc_now(), policy, budget)
