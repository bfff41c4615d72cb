"""The worker of `fieldsync serve`: triggers → fetch → sync, one run at a time, in a thread of its own. A failure is
logged, counted and retried with backoff; nothing runs before the retry."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from ...adapters.consul import ConsulKV
from ...errors import FieldsyncError, Terminated
from ...model import HandEdit, Outcome, SyncReport
from ...rules import metrics
from ...rules.readiness import Reason, Role, Source
from ...rules.schedule import RETRY_CAP, Timers, backoff, jittered
from .. import settings as settings_
from ..status import status as status_of
from ..sync import SyncOptions, outcome_of, sync
from . import handbranch
from .leader import problem
from .options import Log, ServeOptions
from .repository import Repository
from .state import Store
from .triggers import ALWAYS, Triggers

EditSet = frozenset[tuple[str, str, str]]


def edit_set(edits: Iterable[HandEdit]) -> EditSet:
    """A set of hand edits by field, attribute and value, to tell when it changes."""
    return frozenset((e.field, e.attribute, json.dumps(e.live, sort_keys=True, default=str)) for e in edits)


class Worker:
    def __init__(self, options: ServeOptions, store: Store, triggers: Triggers, repository: Repository,
                 stopping: threading.Event, log: Log) -> None:
        self.o, self.store, self.triggers, self.repository = options, store, triggers, repository
        self.stopping, self.log = stopping, log
        self.settings: settings_.Settings | None = None  # those of the first commit fetched
        self.timers = Timers(0.0, 0.0)
        self.failures = 0
        self.synced_commit: str | None = None
        self.edits_seen: EditSet = frozenset()
        self.branch_holds: EditSet | None = None  # the pending set the hand-edits branch holds
        self._identity_warned: tuple[Any, ...] | None = None
        self._clients: dict[tuple[str, ...], ConsulKV] = {}

    def first_fetch(self) -> settings_.Settings | None:
        """The settings of the first commit fetched, retried with backoff until then (or until stopped)."""
        self.store.problem(Source.GIT, Reason.FIRST_FETCH)
        failures = 0
        while not self.stopping.is_set():
            try:
                self.settings = self.repository.settings(self.repository.fetch())
                self.store.problem(Source.GIT, None)
                return self.settings
            except Exception as e:  # a failing remote, and a bug: tried again
                self.store.problem(Source.GIT, Reason.FIRST_FETCH)
                failures += 1
                wait = backoff(failures, max(self.o.interval, RETRY_CAP))
                self.log({"event": "fetch", "error": problem(e), "retry_in_s": wait})
                self.stopping.wait(wait)
        return None

    def loop(self) -> None:
        """Take the triggers and run, until stopping; a standby takes them and drops them."""
        now = time.monotonic()
        self.timers = Timers(now, now).ran(now, self.o.interval, self.o.extract_interval, 0)
        pending: set[str] = set()
        while not self.stopping.is_set():
            pending |= self.triggers.take(self.timers.wait(time.monotonic()))
            now = time.monotonic()
            if self.stopping.is_set():
                return
            if self.timers.held(now):
                continue  # backing off: what came meanwhile waits for the retry
            pending |= self.timers.due(now)
            if self.store.snapshot.role is not Role.LEADER:  # a standby does not sync; a new leader syncs at once
                if pending:
                    self._standby_status()
                self.timers = self.timers.ran(now, self.o.interval, self.o.extract_interval, 0)
                pending.clear()
                continue
            if pending:
                reasons, pending = pending, set()
                try:
                    self.run(reasons)
                except Terminated:
                    self.log({"event": "sync", "outcome": "abandoned", "trigger": ",".join(sorted(reasons)),
                              "error": "stopping: the run gave up before its write; nothing written"})
                    return
                except Exception as e:  # a bug after the run (counting, pushing): reported, the worker goes on
                    self.log({"event": "error", "error": problem(e)})

    def _check_identity(self, s: settings_.Settings) -> None:
        """The election and the watches use the key, state prefix and Consul agents of the first commit: say so, once
        per change, when a later commit names others."""
        first = self.settings
        assert first is not None
        now = (s.key, s.state_prefix, s.consul_addresses)
        if now != (first.key, first.state_prefix, first.consul_addresses) and now != self._identity_warned:
            self._identity_warned = now
            self.log({"event": "config", "error": "fieldsync.yaml names another key, state_prefix or Consul agents "
                                                  "than at start; runs use them, but the election and the watches "
                                                  "stay on the old ones until the service restarts"})

    def _client(self, addresses: tuple[str, ...]) -> ConsulKV:
        if addresses not in self._clients:
            self._clients[addresses] = self.o.connect(addresses)
        return self._clients[addresses]

    def _due(self, reasons: set[str], commit: str) -> bool:
        """Whether these reasons call for a sync: all but a poll always do; a poll only for a new commit."""
        return bool(reasons & ALWAYS) or commit != self.synced_commit

    def _before_write(self) -> None:
        if self.stopping.is_set():
            raise Terminated()

    def run(self, reasons: set[str]) -> None:
        """Fetch and sync once; a failure is logged, counted and retried with backoff, never raised."""
        started, commit = time.monotonic(), None
        trigger = ",".join(sorted(reasons))
        try:
            commit = self.repository.fetch()
            s = self.repository.settings(commit)
            self._check_identity(s)
            if not self._due(reasons, commit):
                self.timers = replace(self.timers, next_fetch=started + jittered(self.o.interval))
                return
            kv = self._client(s.consul_addresses)
            options = SyncOptions(repo=s.repo, key=s.key, servers=s.servers, rev=commit, dry_run=self.o.dry_run,
                                  lock_timeout=s.lock_timeout, allow_rollback=self.o.allow_rollback,
                                  force=self.o.force, drift=s.drift, state_prefix=s.state_prefix, budget=s.budget,
                                  allow_delete=self.o.allow_delete, order_ties=s.order_ties, trigger=trigger)
            report = sync(options, kv, notify=lambda line: self.log({"event": "waiting", "message": line}),
                          before_write=self._before_write)
        except FieldsyncError as e:
            self._count(outcome_of(e), started, trigger, commit, error=str(e))
            return
        except Exception as e:  # a bug: reported, and the service goes on
            self._count(Outcome.FAILED, started, trigger, commit, error=problem(e))
            return
        self._count(report.outcome, started, trigger, commit, report=report)
        self._record_hand_edits(report, s)
        self._refresh_status(s, kv, commit)

    def _standby_status(self) -> None:
        """A standby syncs nothing, but its page shows the state too (a load balancer may send anyone to it): read
        when it becomes a standby, then whenever its own triggers fall due."""
        if self.o.status_page is None or self.store.snapshot.role is not Role.STANDBY:
            return
        try:
            commit = self.repository.fetch()
            s = self.repository.settings(commit)
            self._refresh_status(s, self._client(s.consul_addresses), commit)
        except Exception as e:  # the page keeps what it had; the replica goes on standing by
            self.log({"event": "status", "error": problem(e)})

    def _refresh_status(self, s: settings_.Settings, kv: ConsulKV, commit: str) -> None:
        """The status page's status, after a run: from git and Consul, without asking Prometheus again."""
        if self.o.status_page is None:
            return
        try:
            found = status_of(repo=s.repo, key=s.key, servers=(), kv=kv, policy=s.drift, state_prefix=s.state_prefix,
                              order_ties=s.order_ties, rev=commit)
        except Exception as e:  # the page keeps the status before; the service goes on
            self.log({"event": "status", "error": problem(e)})
            return
        self.store.update(lambda snapshot: replace(snapshot, status=found))

    def _count(self, outcome: Outcome, started: float, trigger: str, commit: str | None,
               report: SyncReport | None = None, error: str | None = None) -> None:
        """Metrics, state and the log line of one run."""
        seconds = time.monotonic() - started
        event: dict[str, Any] = {"event": "sync", "trigger": trigger, "commit": commit, "outcome": outcome}
        self.store.count(lambda m: metrics.observe(m, outcome, seconds, time.time(), report))
        self.failures = self.failures + 1 if outcome is Outcome.FAILED else 0
        now = time.monotonic()
        self.timers = self.timers.ran(now, self.o.interval, self.o.extract_interval, self.failures)
        next_run = time.time() + self.timers.wait(now)
        self.store.update(lambda snapshot: replace(snapshot, next_run=next_run))
        if self.timers.retry_at is not None:
            event.update(error=error, retry_in_s=round(self.timers.retry_at - now, 1))
        else:
            self.synced_commit = commit
        if report is not None:
            plan = report.plan
            self.triggers.seen(report.index_after or plan.index)
            edits = edit_set((*plan.kept, *plan.conflicts, *plan.overwritten))
            if edits and edits != self.edits_seen:
                self.store.count(lambda m: replace(m, drift_events=(m.drift_events or 0) + 1))
            self.edits_seen = edits
            statuses = plan.inputs.statuses
            event.update(
                servers_ok=sum(s.success for s in statuses),
                servers_failed=[s.name for s in statuses if not s.success],
                fields_added=len(plan.diff.added), fields_changed=len(plan.diff.changed),
                fields_removed=len(plan.diff.removed), hand_edits=len(plan.kept),
                conflicts=[e.label for e in plan.conflicts] or None, overwritten=len(plan.overwritten),
                job=plan.job.job.value if plan.job else None,
                job_rewrites=[r.label for r in plan.job_rewrites] or None,
                reason=report.reason, warnings=list(report.warnings) or None)
        elif error is not None and outcome is Outcome.REFUSED:
            event["error"] = error
        event["duration_ms"] = round(seconds * 1000)
        self.log(event)

    def _record_hand_edits(self, report: SyncReport, s: settings_.Settings) -> None:
        """--push-hand-edits: bring the hand-edits branch in line with the pending set whenever it changes."""
        if not (self.o.push_hand_edits and self.o.git_url) or not report.outcome.succeeded:
            return
        pending = report.plan.written.edits if report.plan.written is not None else ()
        seen = edit_set(pending)
        if seen == self.branch_holds:
            return
        branch = self.o.push_hand_edits
        try:
            done = handbranch.update(self.repository.handle, s.repo, branch, s.key, pending,
                                     self.repository.credentials(), socket.gethostname(),
                                     datetime.now(timezone.utc))
        except Exception as e:  # a failing remote, and a bug: the edits stay kept in Consul, tried next time
            self.log({"event": "push", "branch": branch, "error": problem(e)})
            return
        self.branch_holds = seen
        if done.outcome is not handbranch.Outcome.ABSENT:
            self.log({"event": "push", "branch": branch, "outcome": done.outcome.value, "commit": done.commit,
                      "hand_edits": len(pending)})
