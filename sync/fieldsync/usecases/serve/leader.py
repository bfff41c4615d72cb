"""Leader election for `fieldsync serve`: one active replica, the others standing by.

Each replica registers itself on its Consul agent as an instance of the service `fieldsync-replica`, with a TTL
check that it passes every third of the TTL, and holds a session bound to that check (and to the agent's own
health). It waits, with a blocking query, for the leader key to be free; the first to acquire it leads, watching the
key the same way, until the key is no longer its session's: released on SIGTERM (the key is deleted with the
session, which wakes the standbys at once), if the process dies, when its check has gone unpassed for the TTL (a
check's TTL is exact, where a session's own TTL may run to twice its length), or deleted or taken by someone else.
While idle a replica makes no Consul request but that blocking query and the check's passes.
The session lives on the agent that holds the check: a replica should talk to one agent (its node's).

Agentless (consul-k8s's dataplane mode: no agent on the node, the servers reached through a Service that spreads
requests over them), a check registered on one server would be passed on another. There the session has a TTL and
no check at all, and is renewed through whichever server answers; Consul ends it no sooner than twice the TTL after
the last renewal, and the leader steps down one TTL after its last renewal was sent, so the two never overlap. A
leader that dies is then replaced within twice the TTL instead of one.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from ...adapters.consul import CALL_DEADLINE, SESSION_TTL, ConsulKV, holder_value
from ...errors import FieldsyncError
from ...rules.schedule import RETRY_CAP, backoff

WATCH_WAIT = 300.0  # seconds: the longest a blocking query waits, Consul's own cap (5 min)


def problem(error: Exception) -> str:
    """An error in words: a FieldsyncError as it is, anything else as the bug it is."""
    if isinstance(error, FieldsyncError):
        return str(error)
    return f"unexpected error: {type(error).__name__}: {error}; please report it"


class Elector:
    """Runs the election in a thread of its own. `on_leader(True/False)` is told, whenever the election has a result,
    whether this replica leads (it may be told the same twice); `on_consul(problem)` what is wrong with Consul (None
    when it answers again)."""

    def __init__(self, connect: Callable[[], ConsulKV], key: str, on_leader: Callable[[bool], None],
                 on_consul: Callable[[str | None], None], port: int = 0, agentless: bool = False) -> None:
        self.connect, self.key, self.port, self.agentless = connect, key, port, agentless
        self.on_leader, self.on_consul = on_leader, on_consul
        self.replica = f"fieldsync-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"  # its service ID
        self.stopping = threading.Event()
        self.session: str | None = None
        self._ended = threading.Event()  # the current session's: set when it ended, or the service stops
        self.why_ended: str | None = None  # why the last term ended, when it was not by stopping
        self._failures = 0  # in a row: the backoff grows until Consul answers a watch again
        self._thread = threading.Thread(target=self._run, name="elector", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> str | None:
        """Step down and end the session, so that a standby takes over at once; returns why ending it failed."""
        self.stopping.set()
        self._ended.set()
        session, self.session = self.session, None
        kv = self.connect()
        try:
            if session is not None:
                kv.end_session(session)
        except FieldsyncError as e:
            return str(e)
        finally:
            if not self.agentless:
                with contextlib.suppress(FieldsyncError):  # else Consul removes it a minute after its check fails
                    kv.deregister(self.replica)
        return None

    def _run(self) -> None:
        while not self.stopping.is_set():
            ended = self._ended = threading.Event()  # this session's own: a late keepalive of another cannot set it
            kv = self.connect()
            session = None
            try:
                name, began = f"fieldsync serve {self.key}", time.monotonic()
                check = None if self.agentless else kv.register_check(self.replica, self.port, {"key": self.key})
                session = self.session = kv.create_session(name, check)
                if self.stopping.is_set():  # stop() came while the session was being made
                    return
                threading.Thread(target=self._keep_alive, args=(check or session, began, ended), name="keepalive",
                                 daemon=True).start()
                self._campaign(kv, session, ended)
            except Exception as e:  # Consul's failures, and a bug's: the election goes on
                self.on_consul(problem(e))
                self._failures += 1
                self.stopping.wait(backoff(self._failures, RETRY_CAP))
            finally:
                ended.set()  # stops this session's keepalive
                if session is not None:  # given up: end it now (freeing the key it may hold), else it expires
                    with contextlib.suppress(Exception):
                        kv.end_session(session)

    def _campaign(self, kv: ConsulKV, session: str, ended: threading.Event) -> None:
        """Stand by until the key is free, take it, lead until the session ends; returns when it has ended."""
        index = 0
        while not ended.is_set():
            seen = kv.watch(self.key, index, WATCH_WAIT)
            self.on_consul(None)
            self._failures = 0
            index = seen.next_index
            if seen.session is None and not ended.is_set() and kv.acquire(self.key, holder_value(), session):
                self.why_ended = None
                threading.Thread(target=self._hold, args=(session, ended), name="hold", daemon=True).start()
                self.on_leader(True)
                try:
                    ended.wait()
                finally:
                    self.on_leader(False)
                return
            self.on_leader(False)  # held by another: standing by

    def _hold(self, session: str, ended: threading.Event) -> None:
        """While leading, a blocking query on the key: end the term when the key is no longer the session's (deleted
        or taken while the check still passes, by an operator or by Consul itself). Consul's failures are the
        keepalive's to judge."""
        kv = self.connect()
        index, failures = 0, 0
        while not ended.is_set():
            try:
                seen = kv.watch(self.key, index, WATCH_WAIT)
            except Exception:  # Consul's failures, and a bug's: watched again after a backoff
                failures += 1
                ended.wait(backoff(failures, RETRY_CAP))
                continue
            failures = 0
            if seen.session != session:
                self._end(ended, "the leader key was deleted or taken")
                return
            index = seen.next_index

    def _end(self, ended: threading.Event, why: str) -> None:
        if not ended.is_set():
            self.why_ended = why
            ended.set()

    def _keep_alive(self, kept: str, began: float, ended: threading.Event) -> None:
        """Keep the session alive (pass its check, or agentless, renew `kept`, the session) every third of the TTL
        until `ended`; end here
        when Consul no longer has the check or the session (an agent restarted, the session expired), or as soon as
        no beat sent within the last TTL has succeeded, whatever a beat on its way is doing: Consul may end the
        session then, and a leader must not go on believing it leads (each beat may only take what is left of the
        TTL). `began`: before the session was made, its first beat."""
        kv = self.connect()
        last_ok = began  # when the last beat that succeeded was sent: Consul counts from later than that
        while not ended.wait(max(0.0, min(SESSION_TTL / 3, last_ok + SESSION_TTL - time.monotonic()))):
            sent = time.monotonic()
            left = last_ok + SESSION_TTL - sent
            if left <= 0:
                self._end(ended, f"the session could not be kept alive for {SESSION_TTL} s")
                return
            kv.set_deadline(max(0.5, min(CALL_DEADLINE, left)))
            try:
                alive = kv.renew_session(kept) if self.agentless else kv.pass_check(kept)
            except Exception as e:  # Consul's failures, and a bug's: beating goes on while it can
                if not ended.is_set():
                    self.on_consul(problem(e))
                continue
            if ended.is_set():  # abandoned while this beat was on its way: nothing to report
                return
            if not alive:
                gone = "session" if self.agentless else "session's check (the agent restarted?)"
                self.on_consul(f"the {gone} is gone")
                self._end(ended, f"the {gone} is gone")
                return
            if sent - last_ok > SESSION_TTL / 2:  # a beat had failed: Consul answers again
                self.on_consul(None)
            last_ok = sent
