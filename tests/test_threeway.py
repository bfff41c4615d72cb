"""Hand edits in KV and commits in git flow together: neither is lost, and a conflict is named, never guessed."""

from __future__ import annotations

import json

import pygit2
from support.commands import cli, run_sync, synced
from support.kv import client, hand_edit, live, records, run_record

from fieldsync.adapters.consul import ConsulKV, ConsulSettings
from fieldsync.rules.config import server_from_arg
from fieldsync.usecases.sync import SyncOptions, sync


def _set(repo, name: str, **values: str) -> str:  # noqa: ANN001 - a support.gitrepo.GitRepo
    lines = [f"name: {name}", *(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in values.items())]
    repo.write(f"fields/{name}.yaml", "\n".join(lines) + "\n")
    return repo.commit(f"change {name}")


def _edit_both_ways(consul, repo, key: str) -> None:  # noqa: ANN001 - a ConsulAgent, a support.gitrepo.GitRepo
    """A hand edit of company in KV, then a commit of site in git, merged after the live document was written."""
    hand_edit(consul, key, "company", display_name="Empresa (UI)")
    _set(repo, "site", display_name="Site From Git")


def _both_kept(consul, key: str) -> bool:  # noqa: ANN001 - a ConsulAgent
    written = records(consul, key)
    return written["company"]["display_name"] == "Empresa (UI)" and written["site"]["display_name"] == "Site From Git"


def test_import_takes_the_hand_edit_and_leaves_a_later_commit(consul, example_prometheus,
                                                              field_repo) -> None:
    prom = example_prometheus
    key = "threeway/import"
    args = synced(consul, field_repo, prom.url, key)
    _edit_both_ways(consul, field_repo, key)

    code, output = cli(consul, "import", "--from-kv", *args)
    assert code == 0 and "1 hand edit(s) taken into 1 file(s)" in output, output
    assert "display_name: Empresa (UI)" in (field_repo.path / "fields/company.yaml").read_text()
    assert "Site From Git" in (field_repo.path / "fields/site.yaml").read_text()
    field_repo.commit("take the UI edit")
    assert run_sync(consul, field_repo.path, prom.url, key=key)[0] == 0
    assert _both_kept(consul, key)
    code, output = cli(consul, "plan", *args)
    assert code == 0 and "hand edit" not in output, output


def test_sync_keeps_a_hand_edit_and_writes_a_git_change(consul, example_prometheus,
                                                        field_repo) -> None:
    prom = example_prometheus
    key = "threeway/keep"
    assert run_sync(consul, field_repo.path, prom.url, key=key)[0] == 0
    _edit_both_ways(consul, field_repo, key)
    code, output = run_sync(consul, field_repo.path, prom.url, key=key)
    assert code == 0 and "1 hand edit(s) kept, pending import" in output, output
    assert _both_kept(consul, key)
    run = run_record(consul, key)["last"]
    assert [(e["field"], e["live"]) for e in run["hand_edits_kept"]] == [("company", "Empresa (UI)")]
    code, output = cli(consul, "status", "--repo", str(field_repo.path), "--key", key)
    assert "hand edits 1 kept, pending import" in output and "up to date" in output, output
    assert run_sync(consul, field_repo.path, prom.url, key=key)[1].count("unchanged") == 1  # stable


def test_a_conflict_holds_back_only_itself_until_resolved_on_purpose(consul, example_prometheus,
                                                                      field_repo) -> None:
    prom = example_prometheus
    key = "threeway/conflict"
    args = synced(consul, field_repo, prom.url, key)
    hand_edit(consul, key, "company", display_name="By Hand")
    hand_edit(consul, key, "vendor", display_name="Vendor By Hand")
    _set(field_repo, "company", display_name="By Git")  # git also drops company's other settings
    _set(field_repo, "site", display_name="Site From Git")  # a later, unrelated commit

    code, output = run_sync(consul, field_repo.path, prom.url, key=key)
    assert code == 0 and 'warning  conflict company.display_name: by hand "By Hand", in git "By Git"' in output, output
    written = records(consul, key)
    assert written["company"]["display_name"] == "By Hand"  # the conflict keeps its live value
    assert written["company"]["category"] == "extra" and written["site"]["display_name"] == "Site From Git"
    assert written["vendor"]["display_name"] == "Vendor By Hand"
    assert [e["field"] for e in run_record(consul, key)["last"]["conflicts"]] == ["company"]
    code, output = cli(consul, "status", *args)
    assert code == 6 and "conflicts  1 hand edit(s) also changed in git: company.display_name" in output, output
    code, output = run_sync(consul, field_repo.path, prom.url, key=key)
    assert code == 0 and "unchanged" in output, output  # stable while unresolved
    client(consul).kv.delete(f"fieldsync/{key}.status")  # the document alone still says what conflicts
    code, output = cli(consul, "status", *args)
    assert code == 6 and "company.display_name" in output, output

    before = (field_repo.path / "fields/company.yaml").read_text()
    code, output = cli(consul, "import", "--from-kv", *args)
    assert code == 3 and 'conflict   company.display_name: by hand "By Hand", in git "By Git"' in output, output
    assert (field_repo.path / "fields/company.yaml").read_text() == before  # left out
    assert "Vendor By Hand" in (field_repo.path / "fields/vendor.yaml").read_text()  # the other edit is taken
    code, output = cli(consul, "import", "--from-kv", *args, "--prefer", "kv")
    assert code == 0 and "By Hand" in (field_repo.path / "fields/company.yaml").read_text(), output
    field_repo.commit("take the UI edits")
    code, output = run_sync(consul, field_repo.path, prom.url, key=key)
    assert code == 0 and "warning" not in output and "edits  " not in output, output
    assert cli(consul, "status", *args)[0] == 0


def test_force_lets_git_win_a_conflict_and_records_it(consul, example_prometheus, field_repo) -> None:
    prom = example_prometheus
    key = "threeway/conflict-force"
    synced(consul, field_repo, prom.url, key)
    hand_edit(consul, key, "company", display_name="By Hand")
    hand_edit(consul, key, "vendor", display_name="Vendor By Hand")
    _set(field_repo, "company", display_name="By Git")
    code, output = run_sync(consul, field_repo.path, prom.url, key=key, extra=("--force",))
    assert code == 0 and "git's value written (--force)" in output, output
    assert records(consul, key)["company"]["display_name"] == "By Git"
    assert records(consul, key)["vendor"]["display_name"] == "Vendor By Hand"
    overwritten = run_record(consul, key)["last"]["hand_edits_overwritten"]
    assert [(e["field"], e["live"]) for e in overwritten] == [("company", "By Hand")]


def test_revert_lets_git_win_and_records_what_it_overwrote(consul, example_prometheus,
                                                           field_repo) -> None:
    prom = example_prometheus
    key = "threeway/revert"
    assert run_sync(consul, field_repo.path, prom.url, key=key)[0] == 0
    hand_edit(consul, key, "company", display_name="By Hand", required=False)
    code, output = run_sync(consul, field_repo.path, prom.url, key=key, extra=("--drift", "revert"))
    assert code == 0 and "2 hand edit(s) reverted to git's values" in output, output
    assert records(consul, key)["company"]["display_name"] == "Company"
    run = run_record(consul, key)["last"]
    assert {(e["attribute"], e["live"]) for e in run["hand_edits_overwritten"]} == {
        ("display_name", "By Hand"), ("required", False)}


def test_import_on_a_branch_leaves_the_work_tree_alone(consul, example_prometheus, field_repo) -> None:
    prom = example_prometheus
    key = "threeway/branch"
    assert run_sync(consul, field_repo.path, prom.url, key=key)[0] == 0
    hand_edit(consul, key, "company", display_name="By Hand")
    before = (field_repo.path / "fields/company.yaml").read_text()
    code, output = cli(consul, "import", "--from-kv", "--repo", str(field_repo.path), "--key", key,
                       "--branch", "hand-edits/1")
    assert code == 0 and "Committed on branch hand-edits/1" in output, output
    assert (field_repo.path / "fields/company.yaml").read_text() == before
    branch = field_repo.repo.lookup_branch("hand-edits/1").peel(pygit2.Commit)
    assert "display_name: By Hand" in branch.tree["fields/company.yaml"].data.decode()


class _UiInsideTheWindow(ConsulKV):
    """A real client; on its first read of the key, the old UI does its read-modify-write (no check-and-set), as
    its PATCH does, between sync's read and sync's check-and-set."""

    def __init__(self, settings: ConsulSettings, key: str, field: str, text: str) -> None:
        super().__init__(settings)
        self.pending = (key, field, text)

    def read(self, key: str) -> tuple[bytes | None, int]:
        value, index = super().read(key)
        if self.pending and key == self.pending[0]:
            _, field, text = self.pending
            self.pending = None
            doc = json.loads(value or b"{}")
            for record in doc["fields"]:
                if record["name"] == field:
                    record["description"] = text
            self.client.kv.put(key, json.dumps(doc))
        return value, index


def test_seed_race_from_the_old_ui_loses_nothing(consul, example_prometheus, field_repo) -> None:
    """20 rounds: each merges a commit and makes a hand edit, alternately the old UI writing its cached copy back
    over a newer document, and the old UI's read-modify-write inside sync's read -> check-and-set window."""
    prom = example_prometheus
    key = "threeway/race"
    names = sorted(p.stem for p in (field_repo.path / "fields").glob("*.yaml") if p.stem != "site")
    assert run_sync(consul, field_repo.path, prom.url, key=key)[0] == 0
    edits: dict[str, str] = {}
    settings = ConsulSettings.resolve({"CONSUL_HTTP_ADDR": consul.http_addr})
    for round_ in range(20):
        field, text = names[round_ % len(names)], f"hand edit {round_}"
        _set(field_repo, "site", display_name=f"Site {round_}")
        if round_ % 2 == 0:
            cached, _ = live(consul, key)  # the UI's cached copy, read before this commit's sync
            assert run_sync(consul, field_repo.path, prom.url, key=key)[0] == 0
            for record in cached["fields"]:
                if record["name"] == field:
                    record["description"] = text
            client(consul).kv.put(key, json.dumps(cached))  # written back over the newer document
            assert run_sync(consul, field_repo.path, prom.url, key=key)[0] == 0
        else:
            kv = _UiInsideTheWindow(settings, key, field, text)
            options = SyncOptions(repo=str(field_repo.path), key=key, servers=(server_from_arg(prom.url),))
            report = sync(options, kv)
            assert report.outcome == "written" and report.attempts == 2
        edits[field] = text
        written = records(consul, key)
        assert {f: written[f]["description"] for f in edits} == edits, round_  # 0 hand edits lost
        assert written["site"]["display_name"] == f"Site {round_}", round_  # 0 merged commits reverted

    code, output = cli(consul, "import", "--from-kv", "--repo", str(field_repo.path), "--key", key)
    assert code == 0, output
    for field, text in edits.items():
        assert text in (field_repo.path / f"fields/{field}.yaml").read_text()
    assert "Site 19" in (field_repo.path / "fields/site.yaml").read_text()


def test_refuse_never_overwrites_a_hand_edit_that_keep_has_kept(consul, example_prometheus,
                                                                 field_repo) -> None:
    prom = example_prometheus
    key = "threeway/kept-then-refuse"
    assert run_sync(consul, field_repo.path, prom.url, key=key)[0] == 0
    hand_edit(consul, key, "company", display_name="By Hand")
    assert run_sync(consul, field_repo.path, prom.url, key=key)[0] == 0  # keep: the document is sealed again
    _, index = live(consul, key)
    code, output = run_sync(consul, field_repo.path, prom.url, key=key, extra=("--drift", "refuse"))
    assert code == 3 and "company.display_name" in output, output
    assert live(consul, key)[1] == index and records(consul, key)["company"]["display_name"] == "By Hand"


def test_keep_refuses_when_it_cannot_tell_hand_edits(consul, example_prometheus, field_repo) -> None:
    """A live document from a commit this clone lacks has no base to compare with: keep must not guess."""
    from fieldsync.rules import document

    key = "threeway/unknown-base"
    synced(consul, field_repo, example_prometheus.url, key)
    hand_edit(consul, key, "company", display_name="By Hand")
    doc, index = live(consul, key)
    client(consul).kv.put(key, document.encode({**doc, "git": {**doc["git"], "commit": "f" * 40}}), cas=index)
    _, index = live(consul, key)
    code, output = run_sync(consul, field_repo.path, example_prometheus.url, key=key, extra=("--allow-rollback",))
    assert code == 3 and "cannot tell hand edits" in output and live(consul, key)[1] == index, output
    code, output = run_sync(consul, field_repo.path, example_prometheus.url, key=key,
                            extra=("--allow-rollback", "--force"))
    assert code == 0 and "written" in output, output


def test_a_hand_edit_no_field_file_could_hold_is_kept_and_named_not_a_crash(consul, example_prometheus,
                                                                             field_repo) -> None:
    """The old UI's PATCH accepts any value: an order of null or "first" is kept as the person typed it (the
    document holds it), and import names the record it cannot take, rather than anything crashing."""
    prom = example_prometheus
    key = "threeway/junk"
    args = synced(consul, field_repo, prom.url, key)
    hand_edit(consul, key, "company", order=None)
    hand_edit(consul, key, "site", order="first")
    code, output = run_sync(consul, field_repo.path, prom.url, key=key)
    assert code == 0 and "2 hand edit(s) kept" in output, output
    assert records(consul, key)["company"]["order"] is None and records(consul, key)["site"]["order"] == "first"
    code, output = cli(consul, "import", "--from-kv", *args)
    assert code == 1 and "fields/company.yaml" in output and "nothing written" in output, output
