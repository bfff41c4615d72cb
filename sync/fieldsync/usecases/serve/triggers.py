"""Why the worker runs: reasons coalesced into one set, never a queue."""

from __future__ import annotations

import threading

from ...rules.schedule import EXTRACT, RETRY

# why a run happens, besides the timers' (interval, extract, retry)
WEBHOOK, KV, LEADER, RELOAD, STOP = "webhook", "kv", "leader", "reload", "stop"
STANDBY = "standby"  # this replica stands by: it reads the state for its page (and syncs nothing)
ALWAYS = frozenset({EXTRACT, WEBHOOK, KV, LEADER, RELOAD, RETRY})  # a sync whatever the fetch brought


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
