"""Run details in the run record (`<state_prefix><key>.status`): the last run in full and a short history, apart
from the fields document so that the document changes only when its content does."""

from __future__ import annotations

from typing import Any

from ..adapters.consul import ConsulKV
from ..errors import FieldsyncError, Refused
from ..model import Inputs, SyncReport
from ..rules import schemas
from ..rules.config import status_key
from ..rules.document import encode, parse_json

KEEP_RUNS = 20


def entry(outcome: str, error: str | None, inputs: Inputs, report: SyncReport | None, now: str,
          duration_ms: int) -> dict[str, Any]:
    """One run: outcome, time, duration, commit, per-server details and, when it got that far, the field changes."""
    run: dict[str, Any] = {
        "at": now, "outcome": outcome, "error": error, "duration_ms": duration_ms, "commit": inputs.git.commit,
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
        if report.outcome == "written" and plan.overwritten:  # so that what git overwrote can be recovered
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


def record(kv: ConsulKV, key: str, state_prefix: str, run: dict[str, Any]) -> str | None:
    """Best effort: a status that cannot be written never turns a sync's outcome into an error; returns why it was
    not written, if it was not."""
    where = status_key(key, state_prefix)
    try:
        for _ in range(3):
            raw, index = kv.read(where)
            previous, _ = _decode(raw, where)
            history = [{k: run[k] for k in ("at", "outcome", "commit")}, *(previous or {}).get("runs", [])]
            if kv.write_cas(where, encode({"key": key, "last": run, "runs": history[:KEEP_RUNS]}), index):
                return None
    except FieldsyncError as e:
        return str(e)
    return f"{where} kept changing"
