"""sync: the fields of a commit, merged over what Prometheus yields, written to Consul KV with check-and-set under a
session lock, unless a guard refuses."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..adapters.consul import SESSION_TTL, ConsulKV
from ..errors import FieldsyncError, Refused
from ..model import DeletionBudget, Inputs, Outcome, Plan, ServerSpec, SyncReport
from ..rules import guards
from ..rules.config import lock_key
from ..rules.document import Live
from . import runlog
from .extract import Fetch, fetch
from .inputs import gather, require_answers
from .plan import LIVE, prepare, utc_now

CAS_ATTEMPTS = 8


@dataclass(frozen=True)
class SyncOptions:
    """One sync: which commit, to which key, from which servers, and which guards to waive."""

    repo: str
    key: str
    servers: tuple[ServerSpec, ...]
    rev: str = "HEAD"
    dry_run: bool = False
    lock_timeout: float = 60.0
    allow_rollback: bool = False  # write REV even over a document built from a newer commit
    force: bool = False  # write over hand edits the drift policy refuses to overwrite (git wins)
    drift: str = "keep"  # the drift policy: keep | refuse | revert
    state_prefix: str = "fieldsync/"  # where the lock and the run record live
    budget: DeletionBudget = DeletionBudget()
    allow_delete: bool = False  # remove more fields than the deletion budget allows
    order_ties: tuple[str, ...] = ()  # how records with equal `order` are listed
    trigger: str = "command"  # what started the run, for the run record: the command, or serve's triggers


def _refusal(plan: Plan, options: SyncOptions) -> str | None:
    if plan.rollback and not options.allow_rollback:
        return f"{plan.rollback}; refusing to roll back (restore on purpose with --allow-rollback)"
    if plan.drift and not options.force:
        return plan.drift
    if plan.deletion and not options.allow_delete:
        return plan.deletion
    return None


def _prepare(repo: Any, inputs: Inputs, kv: ConsulKV, options: SyncOptions, now: str) -> Plan:
    return prepare(repo, inputs, kv, options.key, now, options.drift, options.budget, options.force,
                   options.state_prefix)


def _attempt(plan: Plan, options: SyncOptions, kv: ConsulKV,
             before_write: Callable[[], None] = lambda: None) -> SyncReport | None:
    """Write the plan if no guard refuses; None when the key changed since it was read."""
    refusal = _refusal(plan, options)
    if refusal:
        return SyncReport(plan, Outcome.REFUSED, refusal, plan.index)
    if plan.unchanged:
        if not options.dry_run and plan.written is not None and plan.written != plan.recorded:
            runlog.remember(kv, options.key, options.state_prefix, plan.written)
        return SyncReport(plan, Outcome.UNCHANGED, index_after=plan.index)
    breach = guards.contract(plan.doc)
    if breach:
        raise FieldsyncError(f"{breach}; nothing written (this is a fieldsync bug: please report it)")
    too_big = guards.size(plan.size.length)
    if too_big:
        raise FieldsyncError(f"{too_big}; nothing written")
    if options.dry_run:
        return SyncReport(plan, Outcome.DRY_RUN, index_after=plan.index)
    before_write()
    if plan.written is not None:
        runlog.remember(kv, options.key, options.state_prefix, plan.written)
    if not kv.write_cas(options.key, plan.value, plan.index):
        return None
    LIVE.put(options.key, plan.value, Live(plan.doc, {}, sealed=True))
    try:  # written: whatever fails from here on is a warning, never "nothing written"
        return SyncReport(plan, Outcome.WRITTEN, index_after=kv.read(options.key)[1])
    except FieldsyncError as e:
        return SyncReport(plan, Outcome.WRITTEN, warnings=(f"written, but reading it back failed: {e}",))


def outcome_of(error: Exception) -> Outcome:
    """The outcome of a run that ended in `error`: refused by a guard, or failed."""
    return Outcome.REFUSED if isinstance(error, Refused) else Outcome.FAILED


def sync(options: SyncOptions, kv: ConsulKV, fetch: Fetch = fetch, now: Callable[[], str] = utc_now,
         notify: Callable[[str], None] = lambda line: None,
         before_write: Callable[[], None] = lambda: None) -> SyncReport:
    """Run one sync. A refusal is a report (outcome "refused", nothing written); a failure raises FieldsyncError,
    nothing written. Every run but a dry run is recorded in the status key. `before_write` is called just before
    each write; what it raises abandons the run with nothing written (how a stopping service gives up)."""
    started = time.monotonic()

    def took() -> int:
        return round((time.monotonic() - started) * 1000)

    repo, inputs = gather(options.repo, options.rev, options.servers, fetch, order_ties=options.order_ties)
    if options.dry_run:
        require_answers(inputs)
        report = _attempt(_prepare(repo, inputs, kv, options, now()), options, kv)
        assert report is not None  # a dry run writes nothing, so it never meets a conflict
        return report
    try:
        require_answers(inputs)
        with kv.lock(lock_key(options.key, options.state_prefix), options.lock_timeout, notify) as held:
            report = _write(repo, inputs, options, kv, now, before_write)
            run = runlog.entry(report.outcome, report.reason, inputs, report, now(), took(), options.trigger)
            unrecorded = runlog.record(kv, options.key, options.state_prefix, run)
        warnings = list(report.warnings)
        if unrecorded and report.outcome is not Outcome.WRITTEN:  # a stale run record must not pass silently
            raise FieldsyncError(f"the run ({report.outcome}) could not be recorded: {unrecorded}")
        if unrecorded:
            warnings.append(f"the run was not recorded: {unrecorded}")
        if held.release_error:
            warnings.append(f"the lock was not released ({held.release_error}); it expires by itself within "
                            f"{2 * SESSION_TTL} s")
        return replace(report, warnings=tuple(warnings), run=run)
    except FieldsyncError as e:
        runlog.record(kv, options.key, options.state_prefix, runlog.entry(outcome_of(e), str(e), inputs, None, now(),
                                                                          took(), options.trigger))
        if "nothing written" in str(e):
            raise
        raise type(e)(f"{e}; nothing written") from None


def _write(repo: Any, inputs: Inputs, options: SyncOptions, kv: ConsulKV, now: Callable[[], str],
           before_write: Callable[[], None]) -> SyncReport:
    """Plan and write with check-and-set, planning again whenever someone wrote in between."""
    for number in range(1, CAS_ATTEMPTS + 1):
        report = _attempt(_prepare(repo, inputs, kv, options, now()), options, kv, before_write)
        if report is not None:
            return replace(report, attempts=number)
    raise FieldsyncError(f"{options.key} kept changing during {CAS_ATTEMPTS} check-and-set attempts; nothing written")
