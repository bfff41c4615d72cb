"""A leadership term: while this replica leads, a blocking query on the document (a write by anyone else is a
trigger at once) and one on the nudge key (through which a standby passes on the webhooks it received). The
elector starts a term when it wins and ends it when it loses; each watch records its own problem."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ...adapters.consul import ConsulKV
from ...rules.readiness import Source, consul_reason
from ...rules.schedule import RETRY_CAP, backoff
from .leader import WATCH_WAIT, problem
from .state import Store
from .triggers import KV, WEBHOOK, Triggers


class Term:
    def __init__(self, connect: Callable[[], ConsulKV], document: str, nudge: str, triggers: Triggers,
                 store: Store) -> None:
        self.ended = threading.Event()
        self.triggers, self.store = triggers, store
        self._lock = threading.Lock()  # a watch reports, or the term ends: never a report after the end
        self.watches = [Watch(connect, document, KV, Source.DOCUMENT_WATCH, self),
                        Watch(connect, nudge, WEBHOOK, Source.NUDGE_WATCH, self)]

    def start(self) -> None:
        for watch in self.watches:
            threading.Thread(target=watch.run, name=f"watch {watch.reason}", daemon=True).start()

    def end(self) -> None:
        with self._lock:
            self.ended.set()
            for watch in self.watches:  # a standby has no watch: nothing of theirs is wrong any more
                self.store.problem(watch.source, None)

    def report(self, source: Source, error: Exception | None) -> None:
        """A watch's problem (None: it answers), unless the term has ended: a late answer of an abandoned blocking
        query must not outlive its term."""
        with self._lock:
            if not self.ended.is_set():
                self.store.problem(source, consul_reason(str(error)) if error else None,
                                   problem(error) if error else None)


class Watch:
    """A blocking query on `key`: a change made by anyone pulls `reason` (the document's with its ModifyIndex)."""

    def __init__(self, connect: Callable[[], ConsulKV], key: str, reason: str, source: Source, term: Term) -> None:
        self.connect, self.key, self.reason, self.source, self.term = connect, key, reason, source, term
        self.index, self.failures = 0, 0
        self.seen: int | None = None  # the key's ModifyIndex at the last answer

    def run(self) -> None:
        kv = self.connect()
        while not self.term.ended.is_set():
            self.poll(kv)

    def poll(self, kv: ConsulKV) -> None:
        """One blocking query, and what it means."""
        try:
            found = kv.watch(self.key, self.index, WATCH_WAIT)
        except Exception as e:  # Consul's failures, and a bug's: the watch goes on
            self.term.report(self.source, e)
            self.index = 0  # the next query answers at once: the problem clears as soon as Consul answers
            self.failures += 1
            self.term.ended.wait(backoff(self.failures, RETRY_CAP))
            return
        self.failures = 0
        self.term.report(self.source, None)
        if self.term.ended.is_set():
            return
        if self.seen is not None and found.modify_index != self.seen:
            self.term.triggers.pull(self.reason, found.modify_index if self.reason == KV else None)
        self.index, self.seen = found.next_index, found.modify_index
