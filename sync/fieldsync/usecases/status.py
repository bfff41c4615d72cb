"""status: which commit the live document came from, where it stands against HEAD, hand edits, and the last run."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from typing import Any

from ..adapters import git
from ..adapters.consul import ConsulKV
from ..errors import FieldsyncError
from ..model import HandEdit, ServerSpec, StatusReport
from ..rules import document, guards, overview
from . import runlog
from .extract import Fetch, extract_all, fetch
from .inputs import locate, read_fields
from .plan import prepare, utc_now


def status(*, repo: str, key: str, servers: Sequence[ServerSpec], kv: ConsulKV, policy: str = "keep",
           state_prefix: str = "fieldsync/", order_ties: Sequence[str] = (), fetch: Fetch = fetch,
           rev: str = "HEAD") -> StatusReport:
    """The verdicts `sync` at `rev` would reach, from the same plan. Hand edits and conflicts need git only; under
    the refuse policy, judging whether a write would overwrite an edit needs what Prometheus yields too."""
    repository = git.open_repo(repo)
    head = str(git.resolve_commit(repository, rev).id)
    raw = kv.read(key)[0]
    live = document.decode(raw, key)
    record, unreadable = runlog.read(kv, key, state_prefix)
    last = (record or {}).get("last")
    branch = git.head_branch(repository)

    def at_a_glance(files: Collection[str] | None, edits: Iterable[HandEdit]) -> dict[str, Any]:
        return {"servers": overview.servers(live, last), "fields": overview.fields(live, files, edits),
                "runs": overview.runs(record), "document": overview.size(raw, live)}

    try:
        repository, inputs = read_fields(repo, rev)
        statuses = extract_all(servers, fetch) if servers else []
        plan = prepare(repository, replace(inputs, statuses=statuses, order_ties=tuple(order_ties)), kv, key,
                       utc_now(), policy, state_prefix=state_prefix)
    except FieldsyncError as e:
        return StatusReport(key, live is not None, branch, head, locate(repository, live, head), None, str(e), last,
                            last_run_problem=unreadable, overview=at_a_glance(None, ()))
    unknown = None
    if policy == "refuse" and guards.edited_outside(live) and not any(s.success for s in statuses):
        unknown = "no Prometheus server answered (or none was given), so what sync would overwrite is not known"
    return StatusReport(key, live is not None, branch, head, plan.position, None if unknown else plan.drift,
                        unknown, last, plan.kept, plan.conflicts, plan.rewritten_by, unreadable, plan.job,
                        plan.job_rewrites, plan.rebuilt,
                        pending=tuple(e for e in (*plan.kept, *plan.overwritten) if e not in plan.conflicts),
                        overview=at_a_glance(inputs.overrides, (*plan.kept, *plan.overwritten, *plan.conflicts)))
