"""The election on its own, in-process against a real Consul: faults injected at the adapter's edge (a keepalive
held up, an acquire failing) while Consul itself answers for real."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from support import kv

from fieldsync.adapters.consul import ConsulKV, ConsulSettings
from fieldsync.errors import FieldsyncError
from fieldsync.localservers import ConsulAgent
from fieldsync.usecases.serve.leader import Elector


class GatedKV(ConsulKV):
    """Consul, except that keepalives (the passes of a session's check) wait for `gate`, and the next acquire fails
    while `fail_acquire` is set."""

    gate = threading.Event()
    passing = threading.Event()
    fail_acquire = threading.Event()
    sessions: list[str] = []

    def pass_check(self, check: str) -> bool:
        self.passing.set()
        self.gate.wait(30)
        return super().pass_check(check)

    def acquire(self, key: str, value: str, session: str) -> bool:
        if self.fail_acquire.is_set():
            self.fail_acquire.clear()
            raise FieldsyncError("cannot reach Consul (locking): injected")
        return super().acquire(key, value, session)

    def create_session(self, name: str, check: str | None = None) -> str:
        session = super().create_session(name, check)
        self.sessions.append(session)
        return session


def _until(check, timeout: float = 30) -> None:  # noqa: ANN001 - a callable returning bool
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_keepalive_of_an_abandoned_session_never_ends_the_next_one(consul: ConsulAgent) -> None:
    key = "fieldsync/leader/gated.leader"
    client = kv.client(consul)
    other = client.session.create(ttl=10, behavior="delete", lock_delay=0)
    assert client.kv.put(key, "another replica", acquire=other)
    roles: list[bool] = []
    elector = Elector(lambda: GatedKV(ConsulSettings(consul.http_addr)), key, roles.append, lambda problem: None)
    elector.start()
    try:
        _until(lambda: roles == [False])  # standing by, its first keepalive held up at the gate
        _until(GatedKV.passing.is_set)
        GatedKV.fail_acquire.set()
        client.session.destroy(other)  # the key is free: the acquire fails, the session is abandoned, a new one leads
        _until(lambda: roles[-1:] == [True])
        assert len(GatedKV.sessions) == 2
        GatedKV.gate.set()  # the abandoned session's keepalive comes back
        time.sleep(SETTLE)
        assert roles == [False, True], roles  # still leading: the old keepalive ended nothing but its own session
        assert client.kv.get(key)[1]["Session"] == GatedKV.sessions[1]
    finally:
        elector.stop()


@contextmanager
def _leading(consul: ConsulAgent, key: str) -> Iterator[tuple[Elector, list[bool]]]:
    """A lone elector on `key`, once it leads, and the roles it has been told; stopped at the end."""
    roles: list[bool] = []
    elector = Elector(lambda: ConsulKV(ConsulSettings(consul.http_addr)), key, roles.append, lambda problem: None)
    elector.start()
    try:
        _until(lambda: roles == [True])
        yield elector, roles
    finally:
        elector.stop()


def test_a_leader_whose_key_is_taken_from_it_steps_down(consul: ConsulAgent) -> None:
    key = "fieldsync/leader/taken.leader"
    client = kv.client(consul)
    with _leading(consul, key) as (_, roles):
        other = client.session.create(ttl=10, behavior="delete", lock_delay=0)
        # an operator (or Consul) frees the key while the leader's check still passes; another takes it at once
        client.txn.put([{"KV": {"Verb": "delete", "Key": key}},
                        {"KV": {"Verb": "lock", "Key": key, "Value": "", "Session": other}}])
        _until(lambda: roles[-1:] == [False])
        time.sleep(SETTLE)
        assert roles[0] and not any(roles[1:]), roles  # standing by (told once or more): the key is another's
        assert client.kv.get(key)[1]["Session"] == other


def test_a_replica_whose_check_failed_leads_again(consul: ConsulAgent) -> None:
    key = "fieldsync/leader/failed.leader"
    client = kv.client(consul)
    with _leading(consul, key) as (elector, roles):
        first = client.kv.get(key)[1]["Session"]
        # its check fails (a pause longer than the TTL, an agent that was away): the session ends, and the agent keeps
        # the check critical when the replica registers it again
        client.agent.check.ttl_fail(f"service:{elector.replica}")
        _until(lambda: False in roles)
        _until(lambda: roles[-1] and (client.kv.get(key)[1] or {}).get("Session") not in (None, first))


SETTLE = 1.0  # seconds for a keepalive thread to act on an answer it has (it acts at once; this is generous)
