"""Faults and bad input against real servers: a clear error naming what and where, and the truth about what was
written. Each case stops a real Consul at a chosen point, or feeds a real server bad input."""

from __future__ import annotations

import json

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


@pytest.mark.parametrize("env, args, fragment", [
    ({"CONSUL_HTTP_ADDR": "127.0.0.1:notaport"}, (), "CONSUL_HTTP_ADDR"),
    ({"CONSUL_HTTP_ADDR": "127.0.0.1:99999"}, (), "port"),
    ({"CONSUL_HTTP_ADDR": "127.0.0.1:0"}, (), "port"),
    ({"CONSUL_HTTP_SSL": "yes"}, (), "CONSUL_HTTP_SSL"),
    ({"CONSUL_HTTP_SSL_VERIFY": "nope"}, (), "CONSUL_HTTP_SSL_VERIFY"),
    ({"CONSUL_CACERT": "/nonexistent/ca.pem"}, (), "CONSUL_CACERT"),
    ({"CONSUL_CAPATH": "/nonexistent/certs"}, (), "CONSUL_CAPATH"),
    ({"CONSUL_CLIENT_CERT": "/nonexistent/c.pem", "CONSUL_CLIENT_KEY": "/nonexistent/k.pem"}, (),
     "CONSUL_CLIENT_CERT"),
    ({"CONSUL_CLIENT_CERT": "/etc/hostname"}, (), "CONSUL_CLIENT_KEY"),
    ({"CONSUL_HTTP_AUTH": "no-colon-here-is-fine-but-empty-user"}, ("--key", "/leading/slash"), "--key"),
    ({"FIELDSYNC_KEY": "/leading/slash"}, (), "key"),
    ({}, ("--key", "a/./b"), "--key"),
    ({}, ("--key", "a//b"), "--key"),
    ({}, ("--lock-timeout", "nan"), "--lock-timeout"),
    ({}, ("--lock-timeout", "inf"), "--lock-timeout"),
])
def test_bad_settings_are_one_clear_line(field_repo, env: dict[str, str], args: tuple[str, ...],
                                         fragment: str) -> None:
    from support.commands import cli

    code, output = cli(None, "sync", "--repo", str(field_repo.path), "--prometheus", "http://127.0.0.1:1", *args,
                       env={"CONSUL_HTTP_ADDR": "127.0.0.1:1", **env})
    assert code == 2, output
    assert len(output.strip().splitlines()) == 1 and fragment in output, output


def test_an_empty_token_file_keeps_the_token_as_the_consul_cli_does(tmp_path) -> None:
    empty = tmp_path / "token"
    empty.write_text("\n")
    settings = ConsulSettings.resolve({"CONSUL_HTTP_TOKEN": "from-env", "CONSUL_HTTP_TOKEN_FILE": str(empty)})
    assert settings.token == "from-env"


@pytest.mark.parametrize("value, expected", [("1", "https"), ("t", "https"), ("TRUE", "https"), ("True", "https"),
                                             ("0", "http"), ("F", "http"), ("false", "http")])
def test_consul_booleans_are_read_the_go_way(value: str, expected: str) -> None:
    assert ConsulSettings.resolve({"CONSUL_HTTP_SSL": value}).scheme == expected


LIVE_VALUES = {
    "name_is_a_list": (b'{"fields": [{"name": ["company"]}]}', "fields/0/name"),
    "name_missing": (b'{"fields": [{"display_name": "Company"}]}', "fields/0"),
    "deeply_nested": (b'{"fields": [], "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested"),
    "nan": (b'{"fields": [], "x": NaN}', "not JSON"),
    "commit_is_a_number": (b'{"fields": [], "git": {"commit": 5}}', "git/commit"),
}


@pytest.mark.parametrize("case", sorted(LIVE_VALUES))
@pytest.mark.parametrize("command", ["sync", "plan", "status", "import"])
def test_a_live_value_that_is_no_sane_document_is_named_and_left_alone(case: str, command: str, consul,
                                                                        start_prometheus, example_config,
                                                                        field_repo) -> None:
    from support.commands import cli
    from support.kv import client

    prom = start_prometheus(example_config)
    key = f"faults/live/{command}/{case}"
    raw, fragment = LIVE_VALUES[case]
    client(consul).kv.put(key, raw)
    args = ["--repo", str(field_repo.path), "--key", key]
    if command != "import":
        args += ["--prometheus", prom.url]
    code, output = cli(consul, command, *(["--from-kv"] if command == "import" else []), *args)
    assert code in (1, 3), output
    assert fragment in output and key in output and "left alone" in output, output
    assert client(consul).kv.get(key)[1]["Value"] == raw


def test_a_status_key_edited_by_hand_is_reported_and_replaced(consul, start_prometheus, example_config,
                                                              field_repo) -> None:
    from support.commands import cli, run_sync
    from support.kv import client, run_record

    prom = start_prometheus(example_config)
    key = "faults/status-key"
    assert run_sync(consul, field_repo.path, prom.url, key=key)[0] == 0
    client(consul).kv.put(f"fieldsync/{key}.status", json.dumps({"last": "garbage", "runs": 5}))
    code, output = cli(consul, "status", "--repo", str(field_repo.path), "--key", key)
    assert code == 0 and f"fieldsync/{key}.status is not a run record" in output, output
    assert run_sync(consul, field_repo.path, prom.url, key=key)[0] == 0
    assert run_record(consul, key)["last"]["outcome"] == "unchanged"
