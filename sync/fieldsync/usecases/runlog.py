"""Run details in the run record (`<state_prefix><key>.status`): the last run in full and a short history, apart
from the fields document so that the document changes only when its content does."""

from __future__ import annotations

from typing import Any

from ..adapters.consul import ConsulKV
from ..errors import FieldsyncError, Refused
from ..model import HandEdit, Inputs, Outcome, SyncReport, Written
from ..rules import schemas
from ..rules.config import status_key
from ..rules.document import encode, parse_json

KEEP_RUNS = 20


def entry(outcome: Outcome, error: str | None, inputs: Inputs, report: SyncReport | None, now: str,
          duration_ms: int, trigger: str = "command") -> dict[str, Any]:
    """One run: outcome, time, duration, what started it, commit, per-server details and, when it got that far, the
    field changes."""
    run: dict[str, Any] = {
        "at": now, "outcome": outcome, "error": error, "duration_ms": duration_ms, "trigger": trigger,
        "commit": inputs.git.commit,
        "ref": inputs.git.ref,
        "servers": [{k: v for k, v in s.to_json().items() if k not in ("fields", "external_labels")}
                    for s in inputs.statuses],
    }
    if report is not None:
        plan, d = report.plan, report.plan.diff
        run.update(fields={"total": plan.doc["total_fields"], "added": d.added,
                           "changed": [c.name for c in d.changed], "removed": d.removed},
                   modify_index=[plan.index, report.index_after], attempts=report.attempts, drift_policy=plan.policy,
                   hand_edits_kept=[e.to_json() for e in plan.kept],
                   conflicts=[e.to_json() for e in plan.conflicts])
        if plan.job is not None and plan.job_rewrites:
            run["job_rewrites"] = {"job": plan.job.job.value, "source": plan.job.named_by,
                                   "attributes": [r.to_json() for r in plan.job_rewrites]}
        if report.outcome is Outcome.WRITTEN and plan.overwritten:  # so that what git overwrote can be recovered
            run["hand_edits_overwritten"] = [e.to_json() for e in plan.overwritten]
    return run


def read(kv: ConsulKV, key: str, state_prefix: str) -> tuple[dict[str, Any] | None, str | None]:
    """(the run record, or None; why it could not be read, if there is one that could not)."""
    where = status_key(key, state_prefix)
    return _decode(kv.read(where)[0], where)


def _decode(raw: bytes | None, where: str) -> tuple[dict[str, Any] | None, str | None]:
    if raw is None:
        return None, None
    try:
        value = parse_json(raw, where, "run record")
    except Refused as e:
        return None, str(e)
    validator = schemas.validator("status")
    if not validator.is_valid(value):
        return None, f"{where} is not a run record (edited by hand?); the next sync replaces it"
    return value, None


def written(record: dict[str, Any] | None) -> Written | None:
    """What the run record says fieldsync last wrote (or was about to write), if it says."""
    state = (record or {}).get("written")
    if not isinstance(state, dict):
        return None
    edits = tuple(HandEdit(e["field"], e["attribute"], e.get("base"), e.get("live"), e.get("git"), e.get("seen"))
                  for e in state["edits"])
    return Written(state["commit"], state["content_hash"], edits)


def _written_json(state: Written) -> dict[str, Any]:
    return {"commit": state.commit, "content_hash": state.content_hash, "edits": [e.to_json() for e in state.edits]}


def _update(kv: ConsulKV, key: str, state_prefix: str, change: Any) -> None:
    """Read the run record, change it (a function of the record, or {} when there is none or it is unreadable)
    and write it back with check-and-set, reading again when someone wrote in between."""
    where = status_key(key, state_prefix)
    for _ in range(3):
        raw, index = kv.read(where)
        previous, _ = _decode(raw, where)
        value = change(previous or {})
        if value is None or kv.write_cas(where, encode(value), index):
            return
    raise FieldsyncError(f"{where} kept changing")


def remember(kv: ConsulKV, key: str, state_prefix: str, state: Written) -> None:
    """Record what the next write leaves in the document, before it is written: the run record never knows less
    than the document, so pending hand edits outlive a key that is wiped or refilled right after."""
    def change(previous: dict[str, Any]) -> dict[str, Any] | None:
        if previous.get("written") == _written_json(state):
            return None
        return {**previous, "key": key, "runs": previous.get("runs", []), "written": _written_json(state)}

    _update(kv, key, state_prefix, change)


def record(kv: ConsulKV, key: str, state_prefix: str, run: dict[str, Any]) -> str | None:
    """Best effort: a status that cannot be written never turns a sync's outcome into an error; returns why it was
    not written, if it was not."""
    def change(previous: dict[str, Any]) -> dict[str, Any]:
        history = [{k: run[k] for k in ("at", "outcome", "commit", "duration_ms", "trigger") if k in run},
                   *previous.get("runs", [])]
        kept = {"written": previous["written"]} if "written" in previous else {}
        return {"key": key, "last": run, "runs": history[:KEEP_RUNS], **kept}

    try:
        _update(kv, key, state_prefix, change)
    except FieldsyncError as e:
        return str(e)
    return None
