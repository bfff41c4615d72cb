"""serve: the scheduled sync as a long-running service.

Threads: the HTTP endpoint (GitHub webhooks, /metrics, /healthz, /readyz); the election (`leader.Elector`); while
leading, two blocking queries (the document, to see hand edits at once, and the nudge key, through which a standby
passes on the webhooks it received); and the worker, which fetches and syncs on every trigger, one run at a time.
Triggers coalesce: whatever arrives during a run makes one more run, never a queue. Signals are the caller's: it
calls `stop()` on SIGTERM and `reload()` on SIGHUP.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from .. import __version__
from ..adapters import git, httpserver
from ..adapters.consul import SESSION_TTL, ConsulKV
from ..adapters.httpserver import Answer, Request
from ..errors import FieldsyncError, Refused, Terminated, UsageError
from ..model import HandEdit, SyncReport
from ..rules import metrics, webhook
from ..rules.config import CONFIG_FILE, leader_key, nudge_key
from ..rules.schedule import EXTRACT, RETRY, RETRY_CAP, Timers, backoff, jittered
from . import handbranch
from . import settings as settings_
from .leader import WATCH_WAIT, Elector, problem
from .sync import SyncOptions, sync

Log = Callable[[dict[str, Any]], None]

# why a run happens, besides the timers' (interval, extract, retry)
WEBHOOK, KV, LEADER, RELOAD = "webhook", "kv", "leader", "reload"
ALWAYS = frozenset({EXTRACT, WEBHOOK, KV, LEADER, RELOAD, RETRY})  # a sync whatever the fetch brought
STOP_MARGIN = 1.5  # seconds past --grace that a stopping service gives Consul to release its leadership


@dataclass(frozen=True)
class ServeOptions:
    repo: str  # --repo as it is, or --workdir holding the clone of git_url
    connect: Callable[[tuple[str, ...]], ConsulKV]  # a client for the given consul.addresses (flags and env applied)
    git_url: str | None = None
    branch: str = "main"
    git_token_file: str | None = None
    git_ssh_key: str | None = None
    listen: tuple[str, int] = ("127.0.0.1", 9469)
    webhook_secret_file: str | None = None
    interval: float = 60.0
    extract_interval: float = 300.0
    push_hand_edits: str | None = None  # the branch that follows the pending hand edits
    grace: float = 10.0  # seconds a stopping service waits for the run in progress
    # as for `sync`
    config_path: str | None = None
    prometheus: tuple[str, ...] = ()
    key: str | None = None
    lock_timeout: float | None = None
    drift: str | None = None
    dry_run: bool = False
    allow_rollback: bool = False
    force: bool = False
    allow_delete: bool = False


class Triggers:
    """Reasons to fetch and sync, coalesced into one set that the worker takes whole. A write of the key counts only
    when our last run has not seen it: not our own write, which the watch may report before the worker records it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._reasons: set[str] = set()
        self._kv_index: int | None = None  # the document's ModifyIndex the last KV trigger saw
        self._seen_index: int | None = None  # the document's ModifyIndex as our last run left it

    def pull(self, reason: str, kv_index: int | None = None) -> None:
        with self._cond:
            self._reasons.add(reason)
            if kv_index is not None:
                self._kv_index = kv_index
            self._cond.notify()

    def seen(self, index: int) -> None:
        """Our last run left the document at this ModifyIndex (written, or read and found in order)."""
        with self._cond:
            self._seen_index = index

    def _live(self) -> set[str]:
        return self._reasons - {KV} if self._kv_index == self._seen_index else set(self._reasons)

    def take(self, timeout: float) -> set[str]:
        with self._cond:
            self._cond.wait_for(lambda: bool(self._live()), timeout)
            reasons, self._reasons = self._live(), set()
            return reasons


def read_secret(path: str) -> bytes:
    """The webhook secret: the file's content, surrounding whitespace stripped; never empty."""
    try:
        with open(path, "rb") as f:
            secret = f.read().strip()
    except OSError as e:
        raise UsageError(f"--webhook-secret-file {path}: {e.strerror}") from None
    if not secret:
        raise UsageError(f"--webhook-secret-file {path} is empty")
    return secret


EditSet = frozenset[tuple[str, str, str]]


def edit_set(edits: Iterable[HandEdit]) -> EditSet:
    """A set of hand edits by field, attribute and value, to tell when it changes."""
    return frozenset((e.field, e.attribute, json.dumps(e.live, sort_keys=True, default=str)) for e in edits)


class Service:
    def __init__(self, options: ServeOptions, log: Log) -> None:
        if options.push_hand_edits is not None and (not options.git_url or options.push_hand_edits == options.branch):
            raise UsageError("--push-hand-edits names a branch of --git-url other than --branch")
        for name in ("interval", "extract_interval", "grace"):
            if not 0 < getattr(options, name) < 86400 * 365:
                raise UsageError(f"--{name.replace('_', '-')} must be a number of seconds above 0 (and below a year)")
        self.o, self.log = options, log
        self.secret = read_secret(options.webhook_secret_file) if options.webhook_secret_file else None
        self.triggers = Triggers()
        self.stopping = threading.Event()
        self._lock = threading.Lock()  # guards what the HTTP threads read: metrics, role, problem
        self.metrics = metrics.service(metrics.MetricState())
        self.leading = False
        self.role_known = False
        self.problem: str | None = "starting"
        self.settings: settings_.Settings | None = None
        self.elector: Elector | None = None
        self._term = threading.Event()  # set when a leadership term ends
        self._generation = 0  # bumped by reload(): settings are read again
        self._cached: tuple[tuple[str, int], settings_.Settings] | None = None
        self._clients: dict[tuple[str, ...], ConsulKV] = {}
        self._repository: Any = None
        self.synced_commit: str | None = None
        self.timers = Timers(0.0, 0.0)  # set when the worker starts
        self.failures = 0
        self.edits_seen: EditSet = frozenset()
        self.branch_holds: EditSet | None = None  # the pending set the hand-edits branch holds
        self._identity_warned: tuple[Any, ...] | None = None
        self._server: Any = None
        self._worker = threading.Thread(target=self._work, name="worker", daemon=True)

    # --- life cycle ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._server = httpserver.start(self.o.listen, self.route, webhook.MAX_BODY)
        host, port = self._server.server_address[:2]
        self.log({"event": "started", "version": __version__, "listen": f"{host}:{port}",
                  "source": self.o.git_url or self.o.repo, "branch": self.o.branch if self.o.git_url else None})
        self._worker.start()

    def alive(self) -> bool:
        return self._worker.is_alive()

    def reload(self) -> None:
        """SIGHUP: read fieldsync.yaml and the webhook secret again, and sync."""
        if self.o.webhook_secret_file:
            try:
                self.secret = read_secret(self.o.webhook_secret_file)
            except UsageError as e:
                self.log({"event": "reload", "error": f"{e}; the previous secret stays"})
        self._generation += 1
        self.log({"event": "reload"})
        self.triggers.pull(RELOAD)

    def stop(self) -> None:
        """Finish the run in progress within --grace (a run not yet writing gives up before its write), release the
        lock and the leadership within STOP_MARGIN more, whatever a call to Consul is doing, stop serving."""
        deadline = time.monotonic() + self.o.grace + STOP_MARGIN
        self.stopping.set()
        self.triggers.pull("stop")
        self._worker.join(self.o.grace)
        if self._worker.is_alive():
            self.log({"event": "stopping", "error": f"the run in progress did not end within {self.o.grace:g} s; "
                                                     "exiting without it (a write not begun by now never begins)"})
        if self.elector is not None:
            release = threading.Thread(target=self._release, args=(self.elector,), name="release", daemon=True)
            release.start()
            release.join(max(0.0, deadline - time.monotonic()))
            if release.is_alive():
                self.log({"event": "stopping", "error": "Consul did not answer in time to release the leadership; "
                                                         f"it expires by itself within {SESSION_TTL} s"})
        self._term.set()
        self._server.shutdown()
        self._server.server_close()
        self.log({"event": "stopped"})

    def _release(self, elector: Elector) -> None:
        problem = elector.stop()
        if problem:
            self.log({"event": "stopping", "error": f"leadership not released ({problem}); it expires by itself"})

    # --- HTTP -----------------------------------------------------------------------------------------------------

    def route(self, request: Request) -> Answer:
        if request.path == "/hooks/github":
            if request.method != "POST":
                return Answer(405, "POST only\n")
            return self._delivery(request)
        if request.method != "GET":
            return Answer(405, "GET only\n")
        if request.path == "/metrics":
            with self._lock:
                state = self.metrics
            return Answer(200, metrics.exposition(state, __version__), CONTENT_TYPE_LATEST)
        if request.path == "/healthz":
            return Answer(200, "ok\n")
        if request.path == "/readyz":
            ready, why = self.readiness()
            return Answer(200 if ready else 503, why + "\n")
        return Answer(404, "not found: try /metrics, /healthz, /readyz or POST /hooks/github\n")

    def readiness(self) -> tuple[bool, str]:
        with self._lock:
            if self.problem:
                return False, self.problem
            if not self.role_known:
                return False, "electing a leader"
            return True, "leader" if self.leading else "standby"

    def _delivery(self, request: Request) -> Answer:
        headers = request.headers
        verdict = webhook.judge(self.secret, headers.get("x-github-event"), headers.get("x-hub-signature-256"),
                                request.body, self.o.branch)
        if verdict.sync:
            verdict = self._pass_on(verdict)
        with self._lock:
            self.metrics = metrics.delivered(self.metrics, verdict.result)
        self.log({"event": "webhook", "delivery": headers.get("x-github-delivery"),
                  "github_event": headers.get("x-github-event"), "result": verdict.result, "status": verdict.status,
                  "commit": verdict.commit, "message": verdict.message})
        return Answer(verdict.status, verdict.message + "\n")

    def _pass_on(self, verdict: webhook.Verdict) -> webhook.Verdict:
        """The leader syncs; a standby tells the leader through the nudge key."""
        if self.leading:
            self.triggers.pull(WEBHOOK)
            return verdict
        s = self.settings
        if s is None:
            return replace(verdict, status=503, result="rejected", sync=False,
                           message="not ready (no commit fetched yet); nothing done")
        try:  # a client of its own: this runs in an HTTP thread
            self.o.connect(s.consul_addresses).put(nudge_key(s.key, s.state_prefix),
                                                   json.dumps({"commit": verdict.commit, "at": time.time()}).encode())
        except FieldsyncError as e:
            return replace(verdict, status=503, result="rejected", sync=False,
                           message=f"standby could not pass the delivery on to the leader: {e}")
        return replace(verdict, message="passed on to the leader")

    # --- leadership -------------------------------------------------------------------------------------------------

    def _on_leader(self, leading: bool) -> None:
        with self._lock:
            changed = leading != self.leading or not self.role_known
            self.leading, self.role_known = leading, True
            self.metrics = metrics.role(self.metrics, leading)
        if not changed:
            return
        self.log({"event": "leader" if leading else "released" if self.stopping.is_set() else "standby"})
        if not leading:
            self._term.set()
            return
        s = self.settings
        assert s is not None  # the election starts once the settings are known
        self._term = term = threading.Event()
        for key, reason in ((s.key, KV), (nudge_key(s.key, s.state_prefix), WEBHOOK)):
            threading.Thread(target=self._watch, args=(s, key, reason, term), name=f"watch {reason}",
                             daemon=True).start()
        self.triggers.pull(LEADER)

    def _on_consul(self, problem: str | None) -> None:
        with self._lock:
            before, self.problem = self.problem, (f"Consul: {problem}" if problem else None)
        if before != self.problem:
            self.log({"event": "consul", "error": problem} if problem else {"event": "consul", "status": "answers"})

    def _watch(self, s: settings_.Settings, key: str, reason: str, term: threading.Event) -> None:
        """While this term lasts, a blocking query on `key`: a change made by anyone pulls `reason`."""
        kv = self.o.connect(s.consul_addresses)
        index, seen, failures = 0, None, 0
        while not term.is_set():
            try:
                found = kv.watch(key, index, WATCH_WAIT)
            except Exception as e:  # Consul's failures, and a bug's: the watch goes on
                self._on_consul(problem(e))
                failures += 1
                term.wait(backoff(failures, RETRY_CAP))
                continue
            if failures:
                self._on_consul(None)
            failures = 0
            if seen is not None and found.modify_index != seen and not term.is_set():
                self.triggers.pull(reason, found.modify_index if reason == KV else None)
            index, seen = found.next_index, found.modify_index

    # --- the worker ---------------------------------------------------------------------------------------------

    def _work(self) -> None:
        s = self._first_fetch()
        if s is None:
            return
        self.elector = Elector(lambda: self.o.connect(s.consul_addresses), leader_key(s.key, s.state_prefix),
                               self._on_leader, self._on_consul, port=self._server.server_address[1])
        self.elector.start()
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
            if not self.leading:  # a standby does not sync; on taking over it syncs at once anyway
                self.timers = self.timers.ran(now, self.o.interval, self.o.extract_interval, 0)
                pending.clear()
                continue
            if pending:
                reasons, pending = pending, set()
                try:
                    self._run(reasons)
                except Terminated:
                    self.log({"event": "sync", "outcome": "abandoned", "trigger": ",".join(sorted(reasons)),
                              "error": "stopping: the run gave up before its write; nothing written"})
                    return
                except Exception as e:  # a bug after the run (counting, pushing): reported, the worker goes on
                    self.log({"event": "error", "error": problem(e)})

    def _first_fetch(self) -> settings_.Settings | None:
        """The settings of the first commit fetched, retried with backoff until then (or until stopped)."""
        failures = 0
        while not self.stopping.is_set():
            try:
                self.settings = self._settings(self._fetch())
                with self._lock:
                    self.problem = None
                return self.settings
            except Exception as e:  # a failing remote, and a bug: tried again
                with self._lock:
                    self.problem = f"waiting for the first fetch: {problem(e)}"
                failures += 1
                wait = backoff(failures, max(self.o.interval, RETRY_CAP))
                self.log({"event": "fetch", "error": problem(e), "retry_in_s": wait})
                self.stopping.wait(wait)
        return None

    def _fetch(self) -> str:
        """The commit to sync: the branch fetched from --git-url, or --repo's HEAD."""
        if self.o.git_url is None:
            self._repository = git.open_repo(self.o.repo)
            return str(git.resolve_commit(self._repository, "HEAD").id)
        credentials = git.remote_credentials(self.o.git_token_file, self.o.git_ssh_key)
        if self._repository is None:
            self._repository = git.clone_or_open(self.o.git_url, self.o.repo, credentials)
        return git.fetch_branch(self._repository, self.o.branch, credentials)

    def _settings(self, commit: str) -> settings_.Settings:
        """fieldsync.yaml as the commit holds it (a clone) or as the work tree holds it (--repo), read again when the
        commit changes or on reload; flags win."""
        if self._cached is not None and self._cached[0] == (commit, self._generation):
            return self._cached[1]
        committed = None
        if self.o.git_url is not None:
            committed = (f"{self.o.git_url}@{commit[:12]}:{CONFIG_FILE}",
                         git.read_at(self._repository, commit, CONFIG_FILE))
        s = settings_.resolve(repo=self.o.repo, config_path=self.o.config_path, prometheus=self.o.prometheus,
                              key=self.o.key, lock_timeout=self.o.lock_timeout, drift=self.o.drift,
                              committed=committed)
        self._cached = ((commit, self._generation), s)
        return s

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

    def _run(self, reasons: set[str]) -> None:
        """Fetch and sync once; a failure is logged, counted and retried with backoff, never raised."""
        started, commit = time.monotonic(), None
        trigger = ",".join(sorted(reasons))
        try:
            commit = self._fetch()
            s = self._settings(commit)
            self._check_identity(s)
            if not self._due(reasons, commit):
                self.timers = replace(self.timers, next_fetch=started + jittered(self.o.interval))
                return
            kv = self._client(s.consul_addresses)
            options = SyncOptions(repo=s.repo, key=s.key, servers=s.servers, rev=commit, dry_run=self.o.dry_run,
                                  lock_timeout=s.lock_timeout, allow_rollback=self.o.allow_rollback,
                                  force=self.o.force, drift=s.drift, state_prefix=s.state_prefix, budget=s.budget,
                                  allow_delete=self.o.allow_delete, order_ties=s.order_ties)
            report = sync(options, kv, notify=lambda line: self.log({"event": "waiting", "message": line}),
                          before_write=self._before_write)
        except FieldsyncError as e:
            self._count("refused" if isinstance(e, Refused) else "failed", started, trigger, commit, error=str(e))
            return
        except Exception as e:  # a bug: reported, and the service goes on
            self._count("failed", started, trigger, commit, error=problem(e))
            return
        self._count(report.outcome, started, trigger, commit, report=report)
        self._record_hand_edits(report, s)

    def _count(self, outcome: str, started: float, trigger: str, commit: str | None,
               report: SyncReport | None = None, error: str | None = None) -> None:
        """Metrics, state and the log line of one run."""
        seconds = time.monotonic() - started
        event: dict[str, Any] = {"event": "sync", "trigger": trigger, "commit": commit, "outcome": outcome}
        with self._lock:
            self.metrics = metrics.observe(self.metrics, outcome, seconds, time.time(), report)
        self.failures = self.failures + 1 if outcome == "failed" else 0
        now = time.monotonic()
        self.timers = self.timers.ran(now, self.o.interval, self.o.extract_interval, self.failures)
        if self.timers.retry_at is not None:
            event.update(error=error, retry_in_s=round(self.timers.retry_at - now, 1))
        else:
            self.synced_commit = commit
        if report is not None:
            plan = report.plan
            self.triggers.seen(report.index_after or plan.index)
            edits = edit_set((*plan.kept, *plan.conflicts, *plan.overwritten))
            if edits and edits != self.edits_seen:
                with self._lock:
                    self.metrics = replace(self.metrics, drift_events=(self.metrics.drift_events or 0) + 1)
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
        elif error is not None and outcome == "refused":
            event["error"] = error
        event["duration_ms"] = round(seconds * 1000)
        self.log(event)

    def _record_hand_edits(self, report: SyncReport, s: settings_.Settings) -> None:
        """--push-hand-edits: bring the hand-edits branch in line with the pending set whenever it changes."""
        if not (self.o.push_hand_edits and self.o.git_url) or report.outcome not in ("written", "unchanged"):
            return
        pending = report.plan.written.edits if report.plan.written is not None else ()
        seen = edit_set(pending)
        if seen == self.branch_holds:
            return
        branch = self.o.push_hand_edits
        try:
            done = handbranch.update(self._repository, s.repo, branch, s.key, pending,
                                     git.remote_credentials(self.o.git_token_file, self.o.git_ssh_key),
                                     socket.gethostname(), datetime.now(timezone.utc))
        except Exception as e:  # a failing remote, and a bug: the edits stay kept in Consul, tried next time
            self.log({"event": "push", "branch": branch, "error": problem(e)})
            return
        self.branch_holds = seen
        if done.outcome is not handbranch.Outcome.ABSENT:
            self.log({"event": "push", "branch": branch, "outcome": done.outcome.value, "commit": done.commit,
                      "hand_edits": len(pending)})
