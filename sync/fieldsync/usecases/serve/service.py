"""serve: the scheduled sync as a long-running service, in parts:

- the state (state.py): one immutable snapshot (role, problems by source, metrics) replaced under one lock, from
  which readiness is derived;
- the HTTP API (api.py): a route table that reads only the snapshot (GitHub webhooks, /metrics, /healthz, /readyz);
- the election (leader.py), and the leadership term it starts and ends (term.py): while leading, blocking queries on
  the document and on the nudge key;
- the worker (worker.py): triggers (triggers.py) → fetch (repository.py) → sync, one run at a time.

Signals are the caller's: it calls `stop()` on SIGTERM and `reload()` on SIGHUP.
"""

from __future__ import annotations

import json
import threading
import time

from ... import __version__
from ...adapters import httpserver
from ...adapters.consul import SESSION_TTL
from ...errors import FieldsyncError, UsageError
from ...rules import metrics, webhook
from ...rules.config import leader_key, nudge_key
from ...rules.readiness import Role, Source, consul_reason
from .api import Api
from .leader import Elector
from .options import Log, ServeOptions, read_secret
from .repository import Repository
from .state import Store
from .term import Term
from .triggers import LEADER, RELOAD, STANDBY, STOP, WEBHOOK, Triggers
from .worker import Worker

STOP_MARGIN = 1.5  # seconds past --grace that a stopping service gives Consul to release its leadership


class Service:
    def __init__(self, options: ServeOptions, log: Log) -> None:
        options.check()
        self.o, self.log = options, log
        self.secret = read_secret(options.webhook_secret_file) if options.webhook_secret_file else None
        self.stopping = threading.Event()
        self.store = Store(log)
        self.triggers = Triggers()
        self.repository = Repository(options, self.store, log)
        self.worker = Worker(options, self.store, self.triggers, self.repository, self.stopping, log)
        self.api = Api(self.store, options.branch, lambda: self.secret, self._pass_on, log, options.status_page,
                       options.push_hand_edits)
        self.elector: Elector | None = None
        self.term: Term | None = None
        self._server: httpserver.Server | None = None
        self._thread = threading.Thread(target=self._work, name="worker", daemon=True)

    # --- life cycle ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._server = httpserver.start(self.o.listen, self.api.route, httpserver.Limits(webhook.MAX_BODY))
        host, port = self._server.address
        self.log({"event": "started", "version": __version__, "listen": f"{host}:{port}",
                  "source": self.o.git_url or self.o.repo, "branch": self.o.branch if self.o.git_url else None})
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def reload(self) -> None:
        """SIGHUP: read fieldsync.yaml and the webhook secret again, and sync."""
        if self.o.webhook_secret_file:
            try:
                self.secret = read_secret(self.o.webhook_secret_file)
            except UsageError as e:
                self.log({"event": "reload", "error": f"{e}; the previous secret stays"})
        self.repository.reload()
        self.log({"event": "reload"})
        self.triggers.pull(RELOAD)

    def stop(self) -> None:
        """Finish the run in progress within --grace (a run not yet writing gives up before its write), release the
        lock and the leadership within STOP_MARGIN more, whatever a call to Consul is doing, stop serving."""
        deadline = time.monotonic() + self.o.grace + STOP_MARGIN
        self.stopping.set()
        self.triggers.pull(STOP)
        self._thread.join(self.o.grace)
        if self._thread.is_alive():
            self.log({"event": "stopping", "error": f"the run in progress did not end within {self.o.grace:g} s; "
                                                     "exiting without it (a write not begun by now never begins)"})
        if self.elector is not None:
            release = threading.Thread(target=self._release, args=(self.elector,), name="release", daemon=True)
            release.start()
            release.join(max(0.0, deadline - time.monotonic()))
            if release.is_alive():
                self.log({"event": "stopping", "error": "Consul did not answer in time to release the leadership; "
                                                         f"it expires by itself within {SESSION_TTL} s"})
        if self.term is not None:
            self.term.ended.set()
        if self._server is not None:
            self._server.stop()
        self.log({"event": "stopped"})

    def _release(self, elector: Elector) -> None:
        problem = elector.stop()
        if problem:
            self.log({"event": "stopping", "error": f"leadership not released ({problem}); it expires by itself"})

    def _work(self) -> None:
        s = self.worker.first_fetch()
        if s is None or self._server is None:
            return
        self.elector = Elector(lambda: self.o.connect(s.consul_addresses), leader_key(s.key, s.state_prefix),
                               self._on_leader, self._on_consul, port=self._server.address[1],
                               agentless=self.o.agentless)
        self.elector.start()
        self.worker.loop()

    # --- leadership -------------------------------------------------------------------------------------------------

    def _on_leader(self, leading: bool) -> None:
        role = Role.LEADER if leading else Role.STANDBY
        was = self.store.role(role)
        if was is role:
            return
        if was is Role.LEADER and not self.stopping.is_set():  # stepped down: lost the session, or the key
            why = self.elector.why_ended if self.elector is not None else None
            self.store.count(metrics.stepped_down)
            self.log({"event": "standby", "reason": why})
        else:
            self.log({"event": "leader" if leading else "released" if self.stopping.is_set() else "standby"})
        if self.term is not None:
            self.term.end()
            self.term = None
        if leading:
            s = self.worker.settings
            assert s is not None  # the election starts once the settings are known
            self.term = Term(lambda: self.o.connect(s.consul_addresses), s.key, nudge_key(s.key, s.state_prefix),
                             self.triggers, self.store)
            self.term.start()
            self.triggers.pull(LEADER)
        elif not self.stopping.is_set():
            self.triggers.pull(STANDBY)

    def _on_consul(self, problem: str | None) -> None:
        self.store.problem(Source.ELECTION, consul_reason(problem) if problem else None, problem)

    def _pass_on(self, verdict: webhook.Verdict) -> webhook.Verdict:
        """The leader syncs; a standby tells the leader through the nudge key."""
        if self.store.snapshot.role is Role.LEADER:
            self.triggers.pull(WEBHOOK)
            return verdict
        s = self.worker.settings
        if s is None:
            return verdict.refused(503, "not ready (no commit fetched yet); nothing done")
        try:  # a client of its own: this runs in an HTTP thread
            self.o.connect(s.consul_addresses).put(nudge_key(s.key, s.state_prefix),
                                                   json.dumps({"commit": verdict.commit, "at": time.time()}).encode())
        except FieldsyncError as e:
            return verdict.refused(503, f"standby could not pass the delivery on to the leader: {e}")
        return verdict.passed_on()
