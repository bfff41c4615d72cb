"""The replica's state: one immutable snapshot (rules/readiness.py), replaced whole under one lock. Every part
reads it whole; what is derived from it (readiness, the role's metrics) is computed, never written beside it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace

from ...rules import metrics
from ...rules.readiness import Reason, Role, Snapshot, Source
from .options import Log


class Store:
    def __init__(self, log: Log) -> None:
        self._lock = threading.Lock()
        self._snapshot = Snapshot(metrics=metrics.service(metrics.MetricState()))
        self.log = log

    @property
    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snapshot

    def update(self, change: Callable[[Snapshot], Snapshot]) -> tuple[Snapshot, Snapshot]:
        """Replace the snapshot by `change` of it; (before, after)."""
        with self._lock:
            before, self._snapshot = self._snapshot, change(self._snapshot)
            return before, self._snapshot

    def count(self, change: Callable[[metrics.MetricState], metrics.MetricState]) -> None:
        """Change the metrics."""
        self.update(lambda s: replace(s, metrics=change(s.metrics)))

    def role(self, role: Role) -> Role:
        """Set the role (and with it what the metrics export); the role before."""
        before, _ = self.update(lambda s: replace(s, role=role, metrics=metrics.role(s.metrics, role is Role.LEADER)))
        return before.role

    def problem(self, source: Source, reason: Reason | None, detail: str | None = None) -> None:
        """Record (or clear, with None) `source`'s problem; a change is logged, with the detail."""
        before, after = self.update(lambda s: s.with_problem(source, reason))
        if before.problems.get(source) != after.problems.get(source):
            event = {"event": "problem", "source": source.value}
            self.log({**event, "reason": reason.value, "error": detail} if reason else {**event, "status": "cleared"})
