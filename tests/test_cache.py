"""What a process keeps between runs (serve's steady state): each version of a field file parsed once, a commit's
files checked once, a value decoded once while its bytes stay the same; and none of it hides a change."""

from __future__ import annotations

from support.badhttp import config_of, serving
from support.kv import hand_edit, records

from fieldsync.adapters.cache import Decoded, ParsedFiles
from fieldsync.adapters.consul import ConsulKV, ConsulSettings
from fieldsync.localservers import ConsulAgent
from fieldsync.model import FileResult, Outcome
from fieldsync.usecases import settings
from fieldsync.usecases.sync import SyncOptions, sync


def test_parsed_files_keep_the_last_two_sets_asked_about() -> None:
    parsed, a, b = ParsedFiles(), FileResult("f/a.yaml", "a"), FileResult("f/b.yaml", "b")
    parsed.put(a, "1")
    assert parsed.get("f/a.yaml", "1") is a and parsed.get("f/a.yaml", "2") is None
    parsed.save()  # a set done: still there for the next
    assert parsed.get("f/a.yaml", "1") is a
    parsed.put(b, "1")
    parsed.save()
    parsed.save()  # two sets that did not ask for it: gone
    assert parsed.get("f/a.yaml", "1") is None and parsed.get("f/b.yaml", "1") is None


def test_a_commits_files_are_checked_once_and_the_last_two_commits_kept() -> None:
    parsed, checks = ParsedFiles(), []

    def check(commit: str):  # noqa: ANN202
        checks.append(commit)
        return [], [FileResult(f"{commit}.yaml")]

    for commit in ("c1", "c1", "c2", "c1", "c3", "c1", "c2"):
        assert parsed.of_commit("/repo", commit, lambda c=commit: check(c))[1][0].path == f"{commit}.yaml"
    assert checks == ["c1", "c2", "c3", "c2"]  # c1 was asked for again before c3 came: kept
    parsed.of_commit("/other", "c1", lambda: check("c1"))
    assert checks[-1] == "c1"  # another repository's commit is another entry


def test_a_value_is_decoded_again_only_when_its_bytes_change() -> None:
    decoded: Decoded[str] = Decoded()
    calls = []

    def decode(raw: bytes) -> str:
        calls.append(raw)
        return raw.decode().upper()

    assert decoded.get("k", b"a", lambda: decode(b"a")) == "A"
    assert decoded.get("k", b"a", lambda: decode(b"a")) == "A" and calls == [b"a"]
    assert decoded.get("k", b"b", lambda: decode(b"b")) == "B" and calls == [b"a", b"b"]
    assert decoded.get("other", b"b", lambda: decode(b"b")) == "B" and len(calls) == 3  # per key
    assert decoded.get("k", None, lambda: "absent") == "absent"
    assert decoded.get("k", b"b", lambda: decode(b"b")) == "B" and len(calls) == 4  # forgotten when absent
    decoded.put("k", b"c", "written")
    assert decoded.get("k", b"c", lambda: decode(b"c")) == "written" and len(calls) == 4


def test_runs_in_one_process_see_every_change(consul: ConsulAgent, field_repo) -> None:
    """As serve runs syncs: a hand edit, a new commit and a changed Prometheus answer are each seen by the next run,
    and a run with nothing new changes nothing."""
    key = "cache/fields"
    answer = {"text": "scrape_configs:\n- job_name: a\n  relabel_configs:\n"
                      "  - {source_labels: [__meta_consul_service_metadata_company], target_label: company}\n"}

    def prometheus(h) -> None:  # noqa: ANN001
        config_of(answer["text"])(h)

    with serving(prometheus) as (url, _):
        field_repo.write("fieldsync.yaml", f"key: {key}\nprometheus:\n  - {{name: p, url: '{url}'}}\n")
        field_repo.commit("one server")
        kv = ConsulKV(ConsulSettings.resolve_all({"CONSUL_HTTP_ADDR": consul.http_addr}, None, None, ()))

        def run() -> Outcome:
            s = settings.resolve(repo=str(field_repo.path))
            return sync(SyncOptions(repo=s.repo, key=key, servers=s.servers), kv).outcome

        assert run() is Outcome.WRITTEN and run() is Outcome.UNCHANGED
        hand_edit(consul, key, "company", display_name="Empresa (UI)")
        assert run() is Outcome.WRITTEN  # the edit kept, and recorded in the document as held
        assert run() is Outcome.UNCHANGED
        assert records(consul, key)["company"]["display_name"] == "Empresa (UI)"
        field_repo.write("fields/company.yaml", "name: company\ndescription: from git\n")
        field_repo.commit("describe company")
        assert run() is Outcome.WRITTEN
        assert records(consul, key)["company"]["description"] == "from git"
        assert records(consul, key)["company"]["display_name"] == "Empresa (UI)"
        answer["text"] += "  - {source_labels: [__meta_consul_service_metadata_rack], target_label: rack}\n"
        assert run() is Outcome.WRITTEN and "rack" in records(consul, key)
        assert run() is Outcome.UNCHANGED
