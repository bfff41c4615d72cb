"""Faults and bad input against real servers: a clear error naming what and where, and the truth about what was
written. Each case stops a real Consul at a chosen point, or feeds a real server bad input."""

from __future__ import annotations

import pytest
from support.kv import KEY

from fieldsync.adapters.consul import ConsulKV, ConsulSettings
from fieldsync.errors import FieldsyncError
from fieldsync.localservers import ConsulAgent
from fieldsync.rules.config import server_from_arg
from fieldsync.usecases.sync import SyncOptions, sync


class _StopsConsul(ConsulKV):
    """A real client that stops its real Consul agent right after a chosen call succeeds."""

    def __init__(self, agent: ConsulAgent, after: str) -> None:
        super().__init__(ConsulSettings.resolve({"CONSUL_HTTP_ADDR": agent.http_addr}))
        self.agent, self.after = agent, after
        self.value_when_stopped: bytes | None = None

    def _stop_after(self, call: str) -> None:
        if call == self.after:
            self.value_when_stopped = ConsulKV(self.settings).read(KEY)[0]  # what a reader saw at that moment
            self.agent.stop()

    def read(self, key: str) -> tuple[bytes | None, int]:
        result = super().read(key)
        self._stop_after("read")
        return result

    def write_cas(self, key: str, value: bytes, index: int) -> bool:
        written = super().write_cas(key, value, index)
        self._stop_after("write")
        return written


def test_consul_lost_after_the_write_still_reports_written(start_consul, start_prometheus, example_config,
                                                            field_repo) -> None:
    agent = start_consul()
    prom = start_prometheus(example_config)
    kv = _StopsConsul(agent, after="write")
    report = sync(SyncOptions(repo=str(field_repo.path), key=KEY, servers=(server_from_arg(prom.url),)), kv)
    assert kv.value_when_stopped is not None  # the document was written
    assert report.outcome == "written"
    assert any("written" in w and "Consul" in w for w in report.warnings), report.warnings


def test_consul_lost_before_the_write_reports_nothing_written(start_consul, start_prometheus, example_config,
                                                              field_repo) -> None:
    agent = start_consul()
    prom = start_prometheus(example_config)
    kv = _StopsConsul(agent, after="read")
    with pytest.raises(FieldsyncError) as raised:
        sync(SyncOptions(repo=str(field_repo.path), key=KEY, servers=(server_from_arg(prom.url),)), kv)
    assert "nothing written" in str(raised.value) and "ending the session" not in str(raised.value)
