"""The HTTP API of `fieldsync serve`: a route table that reads only the state's snapshot, and hands a signed push
delivery to whoever syncs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone

from prometheus_client import CONTENT_TYPE_LATEST

from ... import __version__
from ...adapters.httpserver import Answer, Request
from ...rules import metrics, overview, webhook
from ...rules.readiness import Snapshot, readiness
from .options import Log, StatusPage
from .state import Store

STATUS_JSON = "/status.json"


class Api:
    def __init__(self, store: Store, branch: str, secret: Callable[[], bytes | None],
                 on_push: Callable[[webhook.Verdict], webhook.Verdict], log: Log, page: StatusPage | None = None,
                 hand_edits_branch: str | None = None) -> None:
        self.store, self.branch, self.secret, self.on_push, self.log = store, branch, secret, on_push, log
        self.page, self.hand_edits_branch = page, hand_edits_branch
        self.routes: dict[tuple[str, str], Callable[[Request], Answer]] = {
            ("POST", "/hooks/github"): self.delivery,
            ("GET", "/metrics"): self.metrics,
            ("GET", "/healthz"): lambda request: Answer(200, "ok\n"),
            ("GET", "/readyz"): self.readiness,
            **({("GET", "/"): self.status_page, ("GET", STATUS_JSON): self.status_json} if page else {}),
        }

    def status_page(self, request: Request) -> Answer:
        """The status page (read-only): the status after the latest run, refreshing itself from /status.json."""
        assert self.page is not None
        snapshot = self.store.snapshot
        if snapshot.status is None:
            return Answer(503, f"no status yet: this replica is {snapshot.role.value}; there is one after its "
                               "first run\n", headers=(("Retry-After", "5"),))
        html = self.page.html(snapshot.status, live_source=STATUS_JSON, role=snapshot.role.value,
                              hand_edits_branch=self.hand_edits_branch, next_run=_when(snapshot.next_run))
        return Answer(200, html, "text/html; charset=utf-8",
                      (("Content-Security-Policy", self.page.policy(STATUS_JSON)), ("Cache-Control", "no-store"),
                       ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer")))

    def status_json(self, request: Request) -> Answer:
        assert self.page is not None
        status = self.store.snapshot.status
        if status is None:
            return Answer(503, '{"error": "no status yet"}\n', "application/json")
        data = self.page.json(status)
        return Answer(200, json.dumps({**data, "version": overview.version(data)}, ensure_ascii=False),
                      "application/json", (("Cache-Control", "no-store"),))

    def route(self, request: Request) -> Answer:
        found = self.routes.get((request.method, request.path))
        if found is not None:
            return found(request)
        if any(path == request.path for _, path in self.routes):
            return Answer(405, f"{'POST' if request.path == '/hooks/github' else 'GET'} only\n")
        return Answer(404, f"not found: try {'/, /status.json, ' if self.page else ''}/metrics, /healthz, /readyz or "
                           "POST /hooks/github\n")

    def metrics(self, request: Request) -> Answer:
        return Answer(200, metrics.exposition(self.store.snapshot.metrics, __version__), CONTENT_TYPE_LATEST)

    def readiness(self, request: Request) -> Answer:
        ready, why = readiness(self.store.snapshot)
        return Answer(200 if ready else 503, why + "\n")

    def delivery(self, request: Request) -> Answer:
        headers = request.headers
        verdict = webhook.judge(self.secret(), headers.get("x-github-event"), headers.get("x-hub-signature-256"),
                                request.body, self.branch)
        delivery = headers.get("x-github-delivery")
        if verdict.sync and delivery and self._replayed(delivery):
            verdict = webhook.duplicate(delivery)
        elif verdict.sync:
            verdict = self.on_push(verdict)
            if verdict.status >= 300 and delivery:  # not acted on: GitHub may deliver it again
                self.store.update(lambda s: replace(s, deliveries=webhook.forget(s.deliveries, delivery)))
        self.store.count(lambda m: metrics.delivered(m, verdict.result))
        self.log({"event": "webhook", "delivery": headers.get("x-github-delivery"),
                  "github_event": headers.get("x-github-event"), "result": verdict.result, "status": verdict.status,
                  "commit": verdict.commit, "message": verdict.message})
        return Answer(verdict.status, verdict.message + "\n")

    def _replayed(self, delivery: str) -> bool:
        """Whether a signed push with this id came already (a captured delivery sent again); remembered if not."""
        replayed = False

        def change(s: Snapshot) -> Snapshot:
            nonlocal replayed
            replayed, deliveries = webhook.remember(s.deliveries, delivery, time.time())
            return replace(s, deliveries=deliveries)

        self.store.update(change)
        return replayed


def _when(epoch: float | None) -> str | None:
    """An instant as the page shows it (UTC, to the second)."""
    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")
