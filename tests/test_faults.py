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
    """A real client that stops its real Consul agent right after the first call whose description starts with
    `after` succeeds (calls are described as 'reading <key>', 'writing <key>', 'creating a session', ...)."""

    def __init__(self, agent: ConsulAgent, after: str) -> None:
        super().__init__(ConsulSettings.resolve({"CONSUL_HTTP_ADDR": agent.http_addr}))
        self.agent, self.after = agent, after
        self.value_when_stopped: bytes | None = None
        self.stopped = False

    def _call(self, what, call):  # noqa: ANN001, ANN202 - the parent's signature
        result = super()._call(what, call)
        if not self.stopped and what.startswith(self.after):
            self.stopped = True
            self.value_when_stopped = ConsulKV(self.settings).read(KEY)[0]  # what a reader saw at that moment
            self.agent.stop()
        return result


# Every Consul call of a sync, in order (each one's first time): under the lock, the document and the run record
# are read, what is about to be written is recorded in the run record, the document is written (then read back and
# the run recorded), and the lock's session ends.
KILL_POINTS = ["creating a session", f"locking fieldsync/{KEY}.lock", f"reading {KEY}",
               f"reading fieldsync/{KEY}.status", f"writing fieldsync/{KEY}.status", f"writing {KEY}",
               "ending the session"]


@pytest.mark.parametrize("after", KILL_POINTS)
def test_consul_lost_at_any_point_the_report_tells_the_truth(after: str, start_consul, example_prometheus,
                                                             field_repo) -> None:
    agent = start_consul()
    prom = example_prometheus
    kv = _StopsConsul(agent, after)
    options = SyncOptions(repo=str(field_repo.path), key=KEY, servers=(server_from_arg(prom.url),))
    try:
        report = sync(options, kv)
    except FieldsyncError as e:
        assert kv.stopped and kv.value_when_stopped is None, after  # an error only while nothing was written
        assert "nothing written" in str(e), str(e)
        return
    assert kv.stopped and kv.value_when_stopped is not None and report.outcome == "written", after
    assert bool(report.warnings) == (after != KILL_POINTS[-1]), after  # what failed after the write is said


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
                                                                        example_prometheus,
                                                                        field_repo) -> None:
    from support.commands import cli
    from support.kv import client

    prom = example_prometheus
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


def test_a_status_key_edited_by_hand_is_reported_and_replaced(consul, example_prometheus,
                                                              field_repo) -> None:
    from support.commands import cli, run_sync
    from support.kv import client, run_record

    prom = example_prometheus
    key = "faults/status-key"
    assert run_sync(consul, field_repo.path, prom.url, key=key)[0] == 0
    client(consul).kv.put(f"fieldsync/{key}.status", json.dumps({"last": "garbage", "runs": 5}))
    code, output = cli(consul, "status", "--repo", str(field_repo.path), "--key", key)
    assert code == 0 and f"fieldsync/{key}.status is not a run record" in output, output
    assert run_sync(consul, field_repo.path, prom.url, key=key)[0] == 0
    assert run_record(consul, key)["last"]["outcome"] == "unchanged"


def _server(url: str, tmp_path, **options: object):  # noqa: ANN202
    import dataclasses

    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    return dataclasses.replace(server_from_arg(url), bearer_token_file=str(token), **{"retries": 0, **options})


def test_a_dribbling_prometheus_fails_within_its_timeout(tmp_path) -> None:
    from support.badhttp import dribble, serving

    from fieldsync.usecases.extract import extract_one

    # Without a deadline on the attempt as a whole this would read for as long as the server dribbles (longer than
    # the test's own timeout); how soon it ends is measured in bench/prometheus_limits_bench.py.
    with serving(dribble(seconds=600)) as (url, _):
        status = extract_one(_server(url, tmp_path, timeout=2.0))
    assert not status.success and "no complete answer within 2 s" in (status.error or ""), status.error


def test_one_deadline_covers_every_attempt_of_a_run(tmp_path) -> None:
    from support.badhttp import dribble, serving

    from fieldsync.usecases.extract import extract_one

    # Retries are allowed (2), but the deadline is for the server's whole read in this run: the attempt that used
    # it up is the last one, so a slow server holds a sync for its timeout, not for (retries + 1) timeouts.
    with serving(dribble(seconds=600)) as (url, seen):
        status = extract_one(_server(url, tmp_path, timeout=2.0, retries=2))
    assert not status.success and "no complete answer within 2 s (after 1 attempt)" in (status.error or ""), \
        status.error
    assert len(seen) == 1, seen


def test_a_5xx_answer_is_tried_again_within_the_deadline(tmp_path) -> None:
    from support.badhttp import config_answer, failing_first, serving

    from fieldsync.usecases.extract import extract_one

    with serving(failing_first(2, config_answer)) as (url, seen):
        status = extract_one(_server(url, tmp_path, timeout=10.0, retries=2))
    assert status.success and len(seen) == 3, (status.error, seen)
    with serving(failing_first(3, config_answer)) as (url, seen):
        status = extract_one(_server(url, tmp_path, timeout=10.0, retries=2))
    assert not status.success and "HTTP 503 (after 3 attempts)" in (status.error or ""), status.error


def test_a_huge_answer_is_refused_with_bounded_memory(tmp_path) -> None:
    import tracemalloc

    from support.badhttp import huge, serving

    from fieldsync.usecases.extract import extract_one

    with serving(huge(megabytes=100)) as (url, _):
        tracemalloc.start()
        status = extract_one(_server(url, tmp_path))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert not status.success and "16 MiB" in (status.error or ""), status.error
    assert peak < 30 * 1024 * 1024, peak


def test_credentials_never_follow_a_redirect_to_another_host(tmp_path) -> None:
    from support.badhttp import config_answer, redirect_to, serving

    from fieldsync.usecases.extract import extract_one

    with serving(config_answer) as (elsewhere, seen_elsewhere), \
            serving(redirect_to(f"{elsewhere}/api/v1/status/config")) as (url, seen):
        status = extract_one(_server(url, tmp_path))
    assert status.success, status.error
    assert seen[0].get("Authorization") == "Bearer s3cret-token"
    assert "Authorization" not in seen_elsewhere[0]


def test_a_redirect_from_https_to_http_is_refused(tmp_path) -> None:
    from fieldsync.adapters.prometheus import redirect_target

    with pytest.raises(Exception, match="https to http"):
        redirect_target("https://prom.internal:9090/api/v1/status/config", "http://prom.internal:9090/x")


@pytest.mark.parametrize("config, fragment", [
    ("scrape_configs: 5\n", "scrape_configs must be a list"),
    ("scrape_configs: [5]\n", "scrape_configs[0] must be a mapping"),
    ("scrape_configs: [{job_name: a, relabel_configs: {x: 1}}]\n", "relabel_configs of job 'a' must be a list"),
    ("a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
     "scrape_configs: [{job_name: bomb, relabel_configs: *f}]\n", "expands"),
])
def test_a_config_of_the_wrong_shape_is_a_clear_error(tmp_path, config: str, fragment: str) -> None:
    from fieldsync.usecases.extract import extract_one

    path = tmp_path / "prometheus.yml"
    path.write_text(config)
    status = extract_one(server_from_arg(str(path)))
    assert not status.success and fragment in (status.error or "") and str(path) in (status.error or ""), status.error


SYNC_POLICY = """
key "acl/fields" { policy = "write" }
key "fieldsync/acl/fields.lock" { policy = "write" }
key "fieldsync/acl/fields.status" { policy = "write" }
session_prefix "" { policy = "write" }
"""
PLAN_POLICY = """
key "acl/fields" { policy = "read" }
key "fieldsync/acl/fields.status" { policy = "read" }
"""


def test_least_privilege_acl_policies(start_consul, example_prometheus, field_repo) -> None:
    from support.commands import cli, run_sync
    from support.kv import MASTER_TOKEN, acl_token

    agent = start_consul(acl_master_token=MASTER_TOKEN)
    prom = example_prometheus
    key = "acl/fields"
    sync_token = acl_token(agent, "fieldsync-sync", SYNC_POLICY)
    plan_token = acl_token(agent, "fieldsync-plan", PLAN_POLICY)
    lacking = {name: acl_token(agent, f"lacks-{name}", "\n".join(line for line in SYNC_POLICY.splitlines()
                                                               if fragment not in line))
               for name, fragment in (("document", '"acl/fields"'), ("lock", ".lock"), ("status", ".status"),
                                      ("session", "session_prefix"))}

    def sync_with(token: str) -> tuple[int, str]:
        return run_sync(agent, field_repo.path, prom.url, key=key, env={"CONSUL_HTTP_TOKEN": token})

    code, output = sync_with(sync_token)
    assert code == 0 and "written" in output and "warning" not in output, output
    args = ("--repo", str(field_repo.path), "--key", key, "--prometheus", prom.url)
    for command in ("plan", "status"):
        code, output = cli(agent, command, *args, env={"CONSUL_HTTP_TOKEN": plan_token})
        assert code == 0, (command, output)
    code, output = sync_with(plan_token)
    assert code == 1 and "Consul denied" in output and "nothing written" in output, output
    for name, token in lacking.items():
        code, output = sync_with(token)
        assert code == 1 and "Consul denied" in output, (name, output)


def test_status_in_a_shallow_clone_says_fetch(consul, example_prometheus, field_repo,
                                              tmp_path) -> None:
    import subprocess

    from support.commands import cli, run_sync

    prom = example_prometheus
    key = "faults/shallow"
    assert run_sync(consul, field_repo.path, prom.url, key=key)[0] == 0
    field_repo.write("fields/site.yaml", "name: site\ndisplay_name: Later\n")
    field_repo.commit("later")
    shallow = tmp_path / "shallow"  # git itself: libgit2's local transport cannot fetch shallow
    subprocess.run(["git", "clone", "--quiet", "--depth", "1", f"file://{field_repo.path}", str(shallow)],
                   check=True, timeout=60)
    args = ("--repo", str(shallow), "--key", key, "--prometheus", prom.url)
    code, output = cli(consul, "status", *args)
    assert code == 4 and "unknown to this clone (fetch)" in output, output
    code, output = cli(consul, "sync", *args)
    assert code == 3 and "fetch it first" in output, output


def test_a_repository_owned_by_another_user_is_named(tmp_path, field_repo) -> None:
    import os

    from support.commands import cli

    os.chown(field_repo.path, 65534, 65534)  # nobody: git refuses to work in it unless told it is safe
    try:
        code, output = cli(None, "validate", "--rev", "HEAD", "--repo", str(field_repo.path))
    finally:
        os.chown(field_repo.path, os.getuid(), os.getgid())
    assert code == 2 and "safe.directory" in output and str(field_repo.path) in output, output


def test_import_keeps_a_one_line_file_on_one_line(consul, example_prometheus, field_repo) -> None:
    from support.commands import cli, run_sync
    from support.kv import hand_edit

    prom = example_prometheus
    key = "faults/flow"
    field_repo.write("fields/company.yaml", "{name: company, display_name: Company, order: 3}\n")
    field_repo.commit("flow style")
    assert run_sync(consul, field_repo.path, prom.url, key=key)[0] == 0
    hand_edit(consul, key, "company", display_name="Empresa")
    code, output = cli(consul, "import", "--from-kv", "--repo", str(field_repo.path), "--key", key)
    assert code == 0, output
    assert (field_repo.path / "fields/company.yaml").read_text() == "{name: company, display_name: Empresa, order: 3}\n"


def test_consul_addresses_are_tried_in_order(consul, example_prometheus, field_repo) -> None:
    from support.commands import cli
    from support.kv import records

    from fieldsync.localservers import refused_address

    prom = example_prometheus
    key = "faults/addresses"
    with refused_address() as down, refused_address() as also_down:
        field_repo.write("fieldsync.yaml", f"key: {key}\nconsul:\n  addresses: ['{down}', '{consul.http_addr}']\n"
                                           f"prometheus:\n  - {{name: p, url: '{prom.url}'}}\n")
        field_repo.commit("two Consul addresses")
        code, output = cli(None, "sync", "--repo", str(field_repo.path))
        assert code == 0 and "written" in output, output
        assert "company" in records(consul, key)
        field_repo.write("fieldsync.yaml", f"key: {key}\nconsul:\n  addresses: ['{down}', '{also_down}']\n"
                                           f"prometheus:\n  - {{name: p, url: '{prom.url}'}}\n")
        code, output = cli(None, "sync", "--repo", str(field_repo.path))
    assert code == 1 and down in output and also_down in output and "nothing written" in output, output


@pytest.mark.parametrize("content, fragment", [(b"name: company\ndescription: caf\xe9\n", "not valid UTF-8"),
                                               (b"- name: company\n", "not a mapping")])
def test_import_names_an_existing_file_it_cannot_read(git_repo, tmp_path, content: bytes, fragment: str) -> None:
    from support.commands import cli

    git_repo.write("fields/company.yaml", content)
    doc = tmp_path / "doc.json"
    doc.write_text(json.dumps({"fields": [{"name": "company", "display_name": "Empresa"}]}))
    code, output = cli(None, "import", "--from-file", str(doc), "--repo", str(git_repo.path))
    assert code == 1 and fragment in output and "fields/company.yaml" in output, output
    assert (git_repo.path / "fields/company.yaml").read_bytes() == content


@pytest.fixture(scope="module")
def tls_consul(tmp_path_factory):  # noqa: ANN001, ANN201
    from fieldsync.localservers import make_tls_files

    work = tmp_path_factory.mktemp("tls-consul")
    tls = make_tls_files(work / "tls")
    with ConsulAgent(work / "agent", tls=tls, verify_incoming=True) as agent:
        yield agent, tls


@pytest.mark.parametrize("case, fragment", [
    ("unknown_ca", "not signed by a CA you trust"),
    ("hostname_mismatch", "is not valid for wrong.example"),
    ("no_client_certificate", "asks for a client certificate"),
    ("all_set", None),
])
def test_tls_failures_say_what_is_wrong(tls_consul, field_repo, case: str, fragment: str | None) -> None:
    from support.commands import cli

    agent, tls = tls_consul
    env = {"CONSUL_HTTP_ADDR": f"https://{agent.https_addr}", "CONSUL_HTTP_TOKEN": ""}
    if case != "unknown_ca":
        env["CONSUL_CACERT"] = str(tls["ca"])
    if case == "hostname_mismatch":
        env["CONSUL_TLS_SERVER_NAME"] = "wrong.example"
    if case in ("hostname_mismatch", "all_set"):
        env.update(CONSUL_CLIENT_CERT=str(tls["client_cert"]), CONSUL_CLIENT_KEY=str(tls["client_key"]))
    code, output = cli(None, "status", "--repo", str(field_repo.path), "--key", "tls/fields", env=env)
    if fragment is None:
        assert code == 4 and "absent" in output, output
    else:
        assert code == 1 and fragment in output and agent.https_addr in output, output
