"""The pure parts of `fieldsync serve`: webhook verdicts, timing, log lines, coalescing, and the routes' answers."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest

from fieldsync.adapters.httpserver import Request, parse_listen
from fieldsync.errors import FieldsyncError, Refused, UsageError
from fieldsync.model import Outcome
from fieldsync.render import log_line
from fieldsync.rules import metrics
from fieldsync.rules.readiness import Reason, Role, Snapshot, Source, readiness
from fieldsync.rules.schedule import Timers, backoff, jittered
from fieldsync.rules.webhook import judge, signature
from fieldsync.usecases.serve import ServeOptions, Service
from fieldsync.usecases.serve.triggers import WEBHOOK, Triggers
from fieldsync.usecases.sync import outcome_of

SECRET = b"s3cret"
PUSH = json.dumps({"ref": "refs/heads/main", "after": "a" * 40}).encode()


def test_judge_answers_each_kind_of_delivery() -> None:
    good = signature(SECRET, PUSH)
    assert judge(SECRET, "push", good, PUSH, "main").status == 202
    assert judge(SECRET, "push", good, PUSH, "main").commit == "a" * 40
    assert judge(SECRET, "push", None, PUSH, "main").status == 401
    assert judge(SECRET, "push", signature(b"other", PUSH), PUSH, "main").status == 401
    assert judge(SECRET, "push", good.upper(), PUSH, "main").status == 401
    assert judge(SECRET, "push", good, PUSH + b" ", "main").status == 401  # the body as signed, byte for byte
    assert judge(SECRET, "push", good, PUSH, "release").result == "ignored"
    assert judge(None, "push", good, PUSH, "main").status == 404
    ping = b'{"zen": "x"}'
    assert judge(SECRET, "ping", signature(SECRET, ping), ping, "main").status == 200
    issues = b"{}"
    assert judge(SECRET, "issues", signature(SECRET, issues), issues, "main").result == "ignored"
    junk = b"[1"
    assert judge(SECRET, "push", signature(SECRET, junk), junk, "main").status == 400
    listed = b"[1]"
    assert judge(SECRET, "push", signature(SECRET, listed), listed, "main").status == 400


def test_jitter_stays_within_ten_percent_and_backoff_doubles_to_its_cap() -> None:
    rng = random.Random(7)
    delays = [jittered(60, rng) for _ in range(1000)]
    assert 54 <= min(delays) < 55 and 65 < max(delays) <= 66
    assert [backoff(n, 10) for n in range(6)] == [0, 1, 2, 4, 8, 10]
    assert backoff(10_000, 60) == 60


def test_triggers_coalesce_into_one_set() -> None:
    triggers = Triggers()
    for _ in range(100):
        triggers.pull(WEBHOOK)
    triggers.pull("kv", 42)
    assert triggers.take(0) == {WEBHOOK, "kv"}
    assert triggers.take(0) == set()


def test_a_write_of_the_key_is_a_trigger_only_when_someone_else_made_it() -> None:
    triggers = Triggers()
    triggers.pull("kv", 42)  # the watch can see our own write before the worker records it
    triggers.seen(42)
    assert triggers.take(0) == set()
    triggers.seen(43)
    triggers.pull("kv", 43)
    assert triggers.take(0) == set()
    triggers.pull("kv", 44)  # someone else's write after ours
    assert triggers.take(0) == {"kv"}
    triggers.pull("kv", 45)
    triggers.pull(WEBHOOK)
    triggers.seen(45)
    assert triggers.take(0) == {WEBHOOK}


def test_log_lines_are_logfmt_or_json() -> None:
    event = {"event": "sync", "commit": "abc", "outcome": "failed", "error": 'cannot reach "x"', "warnings": None,
             "servers_failed": ["a", "b"]}
    assert log_line(event, "text", "T") == 'T sync commit=abc outcome=failed error="cannot reach \\"x\\"" ' \
                                           "servers_failed=a,b"
    assert json.loads(log_line(event, "json", "T")) == {"time": "T", "event": "sync", "commit": "abc",
                                                        "outcome": "failed", "error": 'cannot reach "x"',
                                                        "servers_failed": ["a", "b"]}


def test_listen_addresses() -> None:
    assert parse_listen("127.0.0.1:9469") == ("127.0.0.1", 9469)
    assert parse_listen("[::1]:0") == ("::1", 0)
    assert parse_listen(":9469") == ("0.0.0.0", 9469)
    for bad in ("9469", "host:", "host:70000", "host:http"):
        with pytest.raises(UsageError, match="--listen"):
            parse_listen(bad)


def _service(tmp_path: Path, secret: str | None = "  s3cret\n") -> Service:
    path = None
    if secret is not None:
        path = tmp_path / "secret"
        path.write_text(secret)
    options = ServeOptions(repo=str(tmp_path), connect=lambda addresses: None,  # type: ignore[arg-type,return-value]
                           webhook_secret_file=str(path) if path else None)
    return Service(options, log=lambda event: None)


def _delivery(service: Service, signature_header: str | None, event: str = "push") -> int:
    headers = {"x-github-event": event}
    if signature_header is not None:
        headers["x-hub-signature-256"] = signature_header
    return service.api.route(Request("POST", "/hooks/github", headers, PUSH)).status


def test_a_delivery_that_is_not_signed_with_the_secret_triggers_nothing(tmp_path: Path) -> None:
    service = _service(tmp_path)
    service.store.role(Role.LEADER)
    assert _delivery(service, None) == 401
    assert _delivery(service, signature(b"wrong", PUSH)) == 401
    assert service.triggers.take(0) == set()
    assert service.store.snapshot.metrics.deliveries == {"accepted": 0, "rejected": 2, "ignored": 0}
    assert _delivery(service, signature(SECRET, PUSH)) == 202  # the file's whitespace is not part of the secret
    assert service.triggers.take(0) == {WEBHOOK}


def test_routes_answer_health_readiness_and_metrics(tmp_path: Path) -> None:
    service = _service(tmp_path, secret=None)
    get = lambda path: service.api.route(Request("GET", path, {}, b""))  # noqa: E731
    assert get("/healthz").status == 200
    assert (get("/readyz").status, get("/readyz").body) == (503, "electing a leader\n")
    service.store.role(Role.STANDBY)
    assert (get("/readyz").status, get("/readyz").body) == (200, "standby\n")
    service.store.problem(Source.DOCUMENT_WATCH, Reason.CONSUL_DOWN, "cannot reach Consul at http://10.0.0.1:8500")
    assert (get("/readyz").status, get("/readyz").body) == (503, "Consul does not answer\n")  # no address
    assert "fieldsync_leader 0.0" in get("/metrics").body
    assert get("/nothing").status == 404
    assert _delivery(service, None) == 404  # no secret: webhooks are off
    assert service.api.route(Request("DELETE", "/metrics", {}, b"")).status == 405
    assert service.api.route(Request("GET", "/hooks/github", {}, b"")).status == 405


def test_the_status_page_routes_read_the_snapshot_and_are_off_when_asked(tmp_path: Path) -> None:
    from fieldsync import render
    from fieldsync.model import Lineage, Position, StatusReport
    from fieldsync.usecases.serve.options import StatusPage

    page = StatusPage(render.status_page, render.status_json, render.page_policy)
    options = ServeOptions(repo=str(tmp_path), connect=lambda addresses: None,  # type: ignore[arg-type,return-value]
                           status_page=page)
    service = Service(options, log=lambda event: None)
    get = lambda path: service.api.route(Request("GET", path, {}, b""))  # noqa: E731
    assert get("/").status == 503 and "no status yet" in get("/").body and get("/status.json").status == 503
    report = StatusReport("k", True, "main", "a" * 40, Position(Lineage.SAME, "a" * 40, "a" * 40), None, None, None,
                          overview={"servers": [], "fields": [], "runs": [],
                                    "document": {"bytes": 10, "limit": 524288, "share": 0.0, "fields": 0,
                                                 "servers": 0}})
    service.store.update(lambda s: replace(s, status=report, role=Role.LEADER))
    answer = get("/")
    headers = dict(answer.headers)
    assert answer.status == 200 and answer.content_type.startswith("text/html") and 'data-live="/status.json"' in \
        answer.body and ">leader<" in answer.body
    assert headers["Content-Security-Policy"] == render.page_policy("/status.json")
    status = json.loads(get("/status.json").body)
    assert status["key"] == "k" and status["version"] in answer.body  # the page knows which version it shows
    off = Service(ServeOptions(repo=str(tmp_path), connect=lambda a: None),  # type: ignore[arg-type,return-value]
                  log=lambda event: None)
    assert off.api.route(Request("GET", "/", {}, b"")).status == 404
    assert off.api.route(Request("GET", "/status.json", {}, b"")).status == 404


def test_readiness_is_derived_from_every_sources_problem_never_the_last_written() -> None:
    snapshot = Snapshot(Role.LEADER).with_problem(Source.ELECTION, Reason.CONSUL_DENIED)
    snapshot = snapshot.with_problem(Source.DOCUMENT_WATCH, Reason.CONSUL_DOWN)
    assert readiness(snapshot) == (False, "Consul denies a request: check the token's policy")
    cleared = snapshot.with_problem(Source.DOCUMENT_WATCH, None)  # the watch answers again: the election does not
    assert readiness(cleared) == (False, "Consul denies a request: check the token's policy")
    assert readiness(cleared.with_problem(Source.ELECTION, None)) == (True, "leader")
    assert readiness(Snapshot().with_problem(Source.GIT, Reason.FIRST_FETCH)) == (False, "no commit fetched yet")
    assert readiness(Snapshot()) == (False, "electing a leader")


def test_the_service_refuses_an_empty_secret_and_a_zero_interval(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is empty"):
        _service(tmp_path, secret=" \n")
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(UsageError, match="--interval"):
            Service(ServeOptions(repo=".", connect=lambda a: None, interval=bad), log=lambda e: None)  # type: ignore


def test_the_service_metrics_start_as_a_standby_with_nothing_counted() -> None:
    state = metrics.service(metrics.MetricState())
    text = metrics.exposition(metrics.delivered(state, "accepted"), "1.0")
    assert 'fieldsync_webhook_deliveries_total{result="accepted"} 1.0' in text
    assert "fieldsync_drift_events_total 0.0" in text and "fieldsync_leader 0.0" in text
    assert "fieldsync_leader" not in metrics.exposition(metrics.MetricState(), "1.0")  # not in a one-shot textfile
    assert "fieldsync_leader_stepdowns_total 0.0" in text and "fieldsync_clone_remade_total 0.0" in text
    counted = metrics.recloned(metrics.stepped_down(metrics.stepped_down(state)))
    assert (counted.stepdowns, counted.reclones) == (2.0, 1.0)
    assert metrics.recloned(metrics.MetricState()).reclones == 1.0


def test_an_outcome_is_its_value_in_logs_records_and_labels_and_says_whether_it_succeeded() -> None:
    assert [o for o in Outcome if o.succeeded] == [Outcome.WRITTEN, Outcome.UNCHANGED]
    assert (str(Outcome.DRY_RUN), f"{Outcome.REFUSED}", json.dumps({"outcome": Outcome.FAILED})) == (
        "dry-run", "refused", '{"outcome": "failed"}')
    assert log_line({"event": "sync", "outcome": Outcome.WRITTEN}, "text", "t") == "t sync outcome=written"
    assert (outcome_of(Refused("no")), outcome_of(FieldsyncError("no"))) == (Outcome.REFUSED, Outcome.FAILED)
    state = metrics.observe(metrics.MetricState(), Outcome.REFUSED, 0.2, 100.0)
    assert state.runs["refused"] == 1.0 and state.last_success is None and metrics.OUTCOMES == (
        "written", "unchanged", "refused", "failed")
    assert metrics.observe(state, Outcome.UNCHANGED, 0.2, 101.0).last_success == 101.0


def test_timers_hold_every_trigger_until_the_retry_after_a_failure() -> None:
    rng = random.Random(1)
    timers = Timers(0.0, 0.0).ran(100.0, interval=60, extract_interval=0.5, failures=0, rng=rng)
    assert timers.wait(100.0) == 0.5 and timers.due(100.6) == {"extract"} and not timers.held(100.6)
    failed = timers.ran(101.0, interval=60, extract_interval=0.5, failures=3, rng=rng)
    assert failed.retry_at == 105.0 and failed.held(102.0) and failed.wait(102.0) == 3.0  # not the extract at 101.5
    assert failed.due(105.0) == {"extract", "retry"}
    assert Timers(0.0, 0.0).ran(0.0, interval=60, extract_interval=300, failures=50).retry_at == 60.0  # the cap
    assert Timers(0.0, 0.0).ran(0.0, interval=1, extract_interval=300, failures=50).retry_at == 30.0


def test_a_replica_that_steps_down_stops_exporting_what_it_saw_as_leader(tmp_path: Path) -> None:
    service = _service(tmp_path, secret=None)
    service.store.role(Role.LEADER)
    service.store.count(lambda m: replace(m, last_success=1.0, commits_behind=0.0, hand_edits_pending=2.0,
                                          prometheus_up={"a": 1.0}))
    service._on_leader(False)  # its session ended: another replica leads now
    text = service.api.route(Request("GET", "/metrics", {}, b"")).body
    assert "fieldsync_leader 0.0" in text
    for stale in ("fieldsync_last_success_timestamp_seconds", "fieldsync_hand_edits_pending",
                  "fieldsync_commits_behind", 'fieldsync_prometheus_up{server="a"}'):
        assert stale not in text  # or the alerts would fire on a standby's stale view


def test_the_endpoint_answers_500_when_a_route_fails_and_413_for_a_body_too_big() -> None:
    import urllib.error
    import urllib.request

    from fieldsync.adapters import httpserver

    def route(request: Request) -> httpserver.Answer:
        raise KeyError("bug")

    server = httpserver.start(("127.0.0.1", 0), route, httpserver.Limits(max_body=10))
    url = f"http://127.0.0.1:{server.address[1]}"
    try:
        for data, status in ((None, 500), (b"x" * 11, 413)):
            with pytest.raises(urllib.error.HTTPError) as answer:
                urllib.request.urlopen(urllib.request.Request(url + "/x", data=data), timeout=10)
            assert answer.value.code == status
    finally:
        server.stop()


def test_serve_stops_at_start_with_exit_2_on_a_busy_port_or_a_bad_option(tmp_path: Path) -> None:
    import socket

    from support.commands import cli

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, output = cli(None, "serve", "--repo", str(tmp_path), "--listen", f"127.0.0.1:{port}")
    assert code == 2 and f"--listen 127.0.0.1:{port}: Address already in use" in output, output
    code, output = cli(None, "serve", "--git-url", "file:///nowhere")
    assert code == 2 and "--git-url needs --workdir" in output, output
