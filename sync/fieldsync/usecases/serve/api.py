"""The HTTP API of `fieldsync serve`: a route table that reads only the state's snapshot, and hands a signed push
delivery to whoever syncs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from prometheus_client import CONTENT_TYPE_LATEST

from ... import __version__
from ...adapters.httpserver import Answer, Request
from ...rules import metrics, webhook
from ...rules.readiness import Snapshot, readiness
from .options import Log
from .state import Store


class Api:
    def __init__(self, store: Store, branch: str, secret: Callable[[], bytes | None],
                 on_push: Callable[[webhook.Verdict], webhook.Verdict], log: Log) -> None:
        self.store, self.branch, self.secret, self.on_push, self.log = store, branch, secret, on_push, log
        self.routes: dict[tuple[str, str], Callable[[Request], Answer]] = {
            ("POST", "/hooks/github"): self.delivery,
            ("GET", "/metrics"): self.metrics,
            ("GET", "/healthz"): lambda request: Answer(200, "ok\n"),
            ("GET", "/readyz"): self.readiness,
        }

    def route(self, request: Request) -> Answer:
        found = self.routes.get((request.method, request.path))
        if found is not None:
            return found(request)
        if any(path == request.path for _, path in self.routes):
            return Answer(405, f"{'POST' if request.path == '/hooks/github' else 'GET'} only\n")
        return Answer(404, "not found: try /metrics, /healthz, /readyz or POST /hooks/github\n")

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
