"""Leader election for `fieldsync serve`: one active replica, the others standing by.

Each replica holds a Consul session (Consul's shortest TTL, renewed every third of it) and waits, with a blocking
query, for the leader key to be free; the first to acquire it is the leader until its session ends: released on
SIGTERM (the key is deleted with the session, which wakes the standbys at once) or, if the process dies, when Consul
expires the session (2 × TTL after the last renewal, by Consul's own rule). While idle a replica makes no Consul
request but that blocking query and the renewals.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from ..adapters.consul import SESSION_TTL, ConsulKV, holder_value
from ..errors import FieldsyncError
from ..rules.schedule import RETRY_CAP, backoff

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
                 on_consul: Callable[[str | None], None]) -> None:
        self.connect, self.key = connect, key
        self.on_leader, self.on_consul = on_leader, on_consul
        self.stopping = threading.Event()
        self.session: str | None = None
        self._ended = threading.Event()  # the current session's: set when it ended, or the service stops
        self._failures = 0  # in a row: the backoff grows until Consul answers a watch again
        self._thread = threading.Thread(target=self._run, name="elector", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> str | None:
        """Step down and end the session, so that a standby takes over at once; returns why ending it failed."""
        self.stopping.set()
        self._ended.set()
        session, self.session = self.session, None
        if session is None:
            return None
        try:
            self.connect().end_session(session)
        except FieldsyncError as e:
            return str(e)
        return None

    def _run(self) -> None:
        while not self.stopping.is_set():
            ended = self._ended = threading.Event()  # this session's own: a late renewer of another cannot set it
            kv = self.connect()
            session = None
            try:
                session = self.session = kv.create_session(f"fieldsync serve {self.key}")
                if self.stopping.is_set():  # stop() came while the session was being made
                    return
                threading.Thread(target=self._renew, args=(session, ended), name="renewer", daemon=True).start()
                self._campaign(kv, session, ended)
            except Exception as e:  # Consul's failures, and a bug's: the election goes on
                self.on_consul(problem(e))
                self._failures += 1
                self.stopping.wait(backoff(self._failures, RETRY_CAP))
            finally:
                ended.set()  # stops this session's renewer
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
                self.on_leader(True)
                try:
                    ended.wait()
                finally:
                    self.on_leader(False)
                return
            self.on_leader(False)  # held by another: standing by

    def _renew(self, session: str, ended: threading.Event) -> None:
        """Renew every third of the TTL until `ended`; end it here when Consul says the session is gone, or when no
        renewal has succeeded for a whole TTL (Consul may have expired it: a leader must not go on believing it
        leads)."""
        kv = self.connect()
        last_ok = time.monotonic()
        while not ended.wait(SESSION_TTL / 3):
            try:
                alive = kv.renew_session(session)
            except Exception as e:  # Consul's failures, and a bug's: renewing goes on while it can
                if not ended.is_set():
                    self.on_consul(problem(e))
                if time.monotonic() - last_ok >= SESSION_TTL:
                    ended.set()
                    return
                continue
            if ended.is_set():  # abandoned while this renewal was on its way: nothing to report
                return
            if not alive:
                self.on_consul(f"the session {session} ended")
                ended.set()
                return
            if time.monotonic() - last_ok > SESSION_TTL / 2:  # a renewal had failed: Consul answers again
                self.on_consul(None)
            last_ok = time.monotonic()
