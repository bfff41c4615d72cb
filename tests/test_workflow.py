"""The GitOps workflow against real Consul, Prometheus and git: drift, import, plan, restore, history, status,
scaffold."""

from __future__ import annotations

import json
import os
import re

import pygit2
import pytest
from click.testing import CliRunner
from support.commands import cli, customize_company, run_sync, synced
from support.kv import client, hand_edit, live, records, run_record

from fieldsync.cli import main


def test_hand_edit_is_drift_force_overwrites(consul, example_prometheus, field_repo) -> None:
    prom = example_prometheus
    key = "drift/force"
    assert run_sync(consul, field_repo.path, prom.url, key=key)[0] == 0
    hand_edit(consul, key, "company", display_name="Typed In The UI")
    _, index = live(consul, key)
    code, output = run_sync(consul, field_repo.path, prom.url, key=key, extra=("--drift", "refuse"))
    assert code == 3 and "would overwrite 1 hand edit(s): company.display_name" in output
    assert 'display_name: "Typed In The UI" -> "Company"' in output
    assert live(consul, key)[1] == index
    code, output = cli(consul, "status", "--repo", str(field_repo.path), "--key", key, "--prometheus", prom.url,
                       "--drift", "refuse")
    assert "drift      yes" in output and "last sync  refused" in output
    code, output = run_sync(consul, field_repo.path, prom.url, key=key, extra=("--drift", "refuse", "--force"))
    assert code == 0 and records(consul, key)["company"]["display_name"] == "Company"


def test_hand_edit_imported_into_git_then_plan_is_clean(consul, example_prometheus,
                                                        field_repo) -> None:
    prom = example_prometheus
    key = "drift/import"
    args = synced(consul, field_repo, prom.url, key)
    hand_edit(consul, key, "company", display_name="Typed In The UI", show_in_blackbox=False)
    code, output = cli(consul, "plan", *args)
    assert code == 0 and "2 hand edit(s) kept, pending import" in output, output
    code, output = cli(consul, "plan", *args, "--drift", "refuse")
    assert code == 2 and "Warning: the live document was edited outside fieldsync (drift)" in output
    original = (field_repo.path / "fields/company.yaml").read_text()
    code, output = cli(consul, "import", "--from-kv", *args)
    assert code == 0 and "wrote" in output and "company.yaml" in output, output
    text = (field_repo.path / "fields/company.yaml").read_text()
    assert text.startswith(original.splitlines()[0])  # the schema comment line is kept
    assert "display_name: Typed In The UI" in text and "show_in_blackbox: false" in text
    assert text.splitlines()[1].startswith("{name: company, display_name: Typed In The UI,")  # flow style kept
    code, output = cli(consul, "plan", "--worktree", *args)
    assert code == 0 and "No changes" in output, output
    assert "2 hand edit(s) kept" in cli(consul, "plan", *args)[1]  # HEAD does not hold the import yet
    field_repo.commit("take the UI edit into git")
    code, output = run_sync(consul, field_repo.path, prom.url, key=key)
    assert code == 0, output
    assert records(consul, key)["company"]["display_name"] == "Typed In The UI"
    assert cli(consul, "plan", *args)[0] == 0


def _old_record(i: int) -> dict:
    record = {"name": f"legacy_{i}", "display_name": f"Legacy Field {i}", "order": i,
              "category": ["legacy", f"group-{i % 3}"] if i % 2 else "legacy", "required": i % 4 == 0,
              "description": f"imported field {i}", "source_label": f"__meta_consul_service_metadata_legacy_{i}"}
    if i % 5 == 0:
        record.update(field_type="select", options=[f"a{i}", f"b{i}"], default_value=f"a{i}")
    if i % 3 == 0:
        record.update(validation={"pattern": "^[a-z0-9]+$", "message": "lowercase"}, placeholder="e.g. abc",
                      show_in_blackbox=False, show_in_web_probes=False)
    if i % 7 == 0:
        record.update(editable=False, icon="globe", color="#ff8800", show_in_dashboard=True)
    return record  # old shape: most show_in_* flags are missing


def test_old_envelope_with_25_customized_fields_round_trips(consul, example_prometheus, git_repo,
                                                            tmp_path) -> None:
    prom = example_prometheus
    key = "legacy/fields"
    old = [_old_record(i) for i in range(25)]
    envelope = {"data": {"version": "1.0", "last_updated": "2024-01-01", "fields": old,
                         "extraction_status": {"total_servers": 1}}, "meta": {"updated_by": "ui", "id": 7}}
    client(consul).kv.put(key, json.dumps(envelope))
    git_repo.write("README.md", "fields\n")
    git_repo.commit("start")
    code, output = cli(consul, "import", "--repo", str(git_repo.path), "--key", key)
    assert code == 0 and "taken into 25 file(s)" in output, output
    assert CliRunner().invoke(main, ["validate", "--no-cache", "--repo", str(git_repo.path)]).exit_code == 0
    git_repo.commit("import from the old system")
    code, output = run_sync(consul, git_repo.path, prom.url, key=key)
    assert code == 0 and "written" in output, output
    synced = records(consul, key)
    for record in old:
        for attribute, value in record.items():
            if attribute != "source_label":
                assert synced[record["name"]][attribute] == value, (record["name"], attribute)


def test_import_refuses_an_invalid_document_and_writes_nothing(consul, git_repo, tmp_path) -> None:
    bad = tmp_path / "doc.json"
    bad.write_text(json.dumps({"fields": [{"name": "ok_field", "order": 1},
                                          {"name": "bad", "order": -1},
                                          {"name": "worse", "category": "Not A Slug"}]}))
    code, output = cli(consul, "import", "--from-file", str(bad), "--repo", str(git_repo.path))
    assert code == 1 and "nothing written" in output
    assert "bad.yaml" in output and "worse.yaml" in output
    assert not (git_repo.path / "fields").exists()


def test_restore_a_past_revision_on_purpose(consul, example_prometheus, field_repo) -> None:
    prom = example_prometheus
    key = "restore/fields"
    customize_company(field_repo)  # HEAD~2: Empresa
    field_repo.write("fields/company.yaml", "name: company\ndisplay_name: Second\n")
    field_repo.commit("second")
    field_repo.write("fields/company.yaml", "name: company\ndisplay_name: Third\n")
    field_repo.commit("third")
    assert run_sync(consul, field_repo.path, prom.url, key=key)[0] == 0
    code, output = run_sync(consul, field_repo.path, prom.url, key=key, extra=("--rev", "HEAD~2"))
    assert code == 3 and "--allow-rollback" in output
    assert records(consul, key)["company"]["display_name"] == "Third"
    code, output = run_sync(consul, field_repo.path, prom.url, key=key, extra=("--rev", "HEAD~2",
                                                                               "--allow-rollback"))
    assert code == 0 and "written" in output
    assert records(consul, key)["company"]["display_name"] == "Empresa"
    assert records(consul, key)["company"]["field_type"] == "select"
    code, output = cli(consul, "status", "--repo", str(field_repo.path), "--key", key)
    assert ": behind by 2 (refs/heads/main)" in output and "drift      no" in output
    assert run_sync(consul, field_repo.path, prom.url, key=key)[0] == 0  # forward again, no flag needed
    assert records(consul, key)["company"]["display_name"] == "Third"


def test_plan_shows_exactly_the_pull_request(consul, example_prometheus, field_repo) -> None:
    prom = example_prometheus
    key = "plan/fields"
    args = synced(consul, field_repo, prom.url, key)
    assert cli(consul, "plan", *args)[0] == 0
    field_repo.write("fields/site.yaml", field_repo.path.joinpath("fields/site.yaml").read_text()
                     .replace("display_name: Site", "display_name: Site Name").replace("order: 50", "order: 7"))
    field_repo.write("fields/building.yaml", "name: building\ncategory: location\n")
    field_repo.commit("pull request")
    code, output = cli(consul, "plan", *args, "--format", "json")
    assert code == 2
    result = json.loads(output)
    assert result["added"] == ["building"] and result["removed"] == []
    assert result["changed"] == {"site": {"display_name": {"before": "Site", "after": "Site Name"},
                                          "order": {"before": 50, "after": 7}}}
    code, output = cli(consul, "plan", *args, "--format", "markdown")
    assert code == 2
    assert "**1 to add, 1 to change, 0 to remove.**" in output
    assert '| `site` | `display_name` | `"Site"` | `"Site Name"` |' in output
    assert "| `building` | *(new field)* | | |" in output
    code, output = cli(consul, "plan", *args)
    assert "  + building" in output and "      order: 50 -> 7" in output
    code, output = cli(consul, "plan", *args, "--format", "yaml")
    assert code == 1


def test_status_key_holds_run_details_and_noop_leaves_document_alone(consul, example_prometheus,
                                                                     field_repo) -> None:
    prom = example_prometheus
    key = "status/fields"
    assert run_sync(consul, field_repo.path, prom.url, key=key)[0] == 0
    _, index = live(consul, key)
    assert run_sync(consul, field_repo.path, prom.url, key=key)[0] == 0
    assert live(consul, key)[1] == index
    status = run_record(consul, key)
    assert [r["outcome"] for r in status["runs"]] == ["unchanged", "written"]
    assert status["last"]["servers"][0]["success"] and "duration_ms" in status["last"]["servers"][0]
    code, output = cli(consul, "status", "--repo", str(field_repo.path), "--key", key)
    assert "up to date" in output and "last sync  unchanged" in output


def test_history_lists_attribute_changes(field_repo) -> None:
    customize_company(field_repo)
    field_repo.write("fields/company.yaml", "name: company\ndisplay_name: Empresa\n")
    field_repo.commit("simplify company")
    field_repo.write("fields/vendor.yaml", "name: vendor\n")
    field_repo.commit("unrelated")
    result = CliRunner().invoke(main, ["history", "company", "--repo", str(field_repo.path)])
    assert result.exit_code == 0, result.output
    blocks = result.output.split("Test Person")
    assert len(blocks) == 4  # three commits touched company.yaml
    assert "simplify company" in blocks[1] and '- category: ["basic", "billing"]' in blocks[1]
    assert '- field_type: "select"' in blocks[1] and "display_name" not in blocks[1]
    assert '~ display_name: "Company" -> "Empresa"' in blocks[2] and "[added]" in blocks[2] + blocks[3]
    missing = CliRunner().invoke(main, ["history", "nope", "--repo", str(field_repo.path)])
    assert missing.exit_code == 2


def test_scaffold_writes_stubs_and_commits_on_a_branch(example_prometheus, field_repo) -> None:
    prom = example_prometheus
    (field_repo.path / "fields/vendor.yaml").unlink()
    field_repo.commit("drop vendor")
    result = CliRunner().invoke(main, ["scaffold", "--repo", str(field_repo.path), "--prometheus", prom.url,
                                       "--branch", "scaffold/new-fields"])
    assert result.exit_code == 0, result.output
    repo = pygit2.Repository(str(field_repo.path))
    branch = repo.lookup_branch("scaffold/new-fields").peel(pygit2.Commit)
    added = sorted(e.name for e in branch.tree["fields"])
    assert {"cost_center.yaml", "vendor.yaml"} <= set(added)
    assert not (field_repo.path / "fields/vendor.yaml").exists()  # the work tree is untouched
    assert CliRunner().invoke(main, ["validate", "--rev", "scaffold/new-fields", "--repo", str(field_repo.path),
                                     "--no-cache"]).exit_code == 0
    stub = branch.tree["fields/cost_center.yaml"].data.decode()
    assert "source label __meta_consul_service_metadata_cost_center" in stub and "# field_type: \"string\"" in stub
    again = CliRunner().invoke(main, ["scaffold", "--repo", str(field_repo.path), "--prometheus", prom.url,
                                      "--branch", "scaffold/new-fields"])
    assert again.exit_code == 2 and "already exists" in again.output
    result = CliRunner().invoke(main, ["scaffold", "--repo", str(field_repo.path), "--prometheus", prom.url])
    assert result.exit_code == 0 and (field_repo.path / "fields/vendor.yaml").exists()


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_status_of_an_absent_key(consul, field_repo, fmt: str) -> None:
    code, output = cli(consul, "status", "--repo", str(field_repo.path), "--key", "absent/fields", "--format", fmt)
    assert code == 4  # not at HEAD: sync would write
    assert ("absent" in output) if fmt == "text" else (json.loads(output)["exists"] is False)


def test_import_names_a_broken_existing_file(consul, git_repo, tmp_path) -> None:
    git_repo.write("fields/company.yaml", "name: company\norder: [\n")
    doc = tmp_path / "doc.json"
    doc.write_text(json.dumps({"fields": [{"name": "company", "order": 3}]}))
    code, output = cli(consul, "import", "--from-file", str(doc), "--repo", str(git_repo.path))
    assert code == 1 and "fields/company.yaml:3:1" in output and "Traceback" not in output


def test_plan_says_no_changes_exactly_when_sync_writes_nothing(consul, example_prometheus,
                                                               field_repo) -> None:
    prom = example_prometheus
    key = "plan/truth"
    args = synced(consul, field_repo, prom.url, key)
    code, output = cli(consul, "plan", *args)
    assert code == 0 and "No changes: the live document already holds this content" in output
    assert "unchanged" in run_sync(consul, field_repo.path, prom.url, key=key)[1]
    hand_edit(consul, key, "company", regex="refreshed by the next sync")  # extraction data only
    code, output = cli(consul, "plan", *args, "--format", "json")
    assert code == 0 and json.loads(output)["writes"] is True and json.loads(output)["changes"] is False
    assert "No changes to fields: sync rewrites the document only" in cli(consul, "plan", *args)[1]
    assert "written" in run_sync(consul, field_repo.path, prom.url, key=key)[1]


def test_scaffold_with_no_prometheus_answering_is_an_error(field_repo) -> None:
    from fieldsync.localservers import refused_address

    with refused_address() as nowhere:
        code, output = cli(None, "scaffold", "--repo", str(field_repo.path), "--prometheus", f"http://{nowhere}")
    assert code == 1 and "no Prometheus server answered" in output, output


def test_files_are_written_with_the_usual_mode(tmp_path, git_repo) -> None:
    doc = tmp_path / "doc.json"
    doc.write_text(json.dumps({"fields": [{"name": "company", "display_name": "Empresa"}]}))
    old = os.umask(0o022)
    try:
        assert cli(None, "import", "--from-file", str(doc), "--repo", str(git_repo.path))[0] == 0
    finally:
        os.umask(old)
    assert (git_repo.path / "fields/company.yaml").stat().st_mode & 0o777 == 0o644


def test_commands_find_the_repository_root_from_a_subdirectory(consul, example_prometheus,
                                                               field_repo, monkeypatch) -> None:
    prom = example_prometheus
    field_repo.write("fieldsync.yaml", f"key: subdir/fields\nprometheus:\n  - {{name: p, url: '{prom.url}'}}\n")
    field_repo.commit("config")
    monkeypatch.chdir(field_repo.path / "fields")
    code, output = cli(consul, "sync")
    assert code == 0 and "written to subdir/fields" in output, output
    hand_edit(consul, "subdir/fields", "company", display_name="From The UI")
    code, output = cli(consul, "import", "--from-kv")
    assert code == 0, output
    assert "From The UI" in (field_repo.path / "fields/company.yaml").read_text()
    assert not (field_repo.path / "fields/fields").exists()
    assert cli(consul, "validate", "--no-cache")[0] == 0


def test_size_headroom_is_known_before_the_merge(consul, example_prometheus, field_repo) -> None:
    prom = example_prometheus
    key = "plan/size"
    args = ("--repo", str(field_repo.path), "--key", key, "--prometheus", prom.url)
    code, output = cli(consul, "plan", *args)
    assert code == 2 and "% of Consul's 524,288 byte limit; room for ~" in output, output
    assert "more fields at 1 server(s)." in output, output
    for i in range(120):  # about 88% of the limit
        field_repo.write(f"fields/big_{i}.yaml", f"name: big_{i}\ndescription: {'x' * 2900}\n")
    field_repo.commit("near the limit")
    code, output = cli(consul, "plan", *args)
    assert code == 2 and "Warning: the document would be" in output and "over 80%" in output, output
    code, output = cli(consul, "validate", "--rev", "HEAD", "--repo", str(field_repo.path))
    assert code == 0 and "warning: the document would be about" in output, output
    room = int(re.search(r"room for ~(\d+) more fields at 0 server", output).group(1))  # type: ignore[union-attr]
    assert 0 < room < 60, output
    for i in range(120, 170):
        field_repo.write(f"fields/big_{i}.yaml", f"name: big_{i}\ndescription: {'x' * 2900}\n")
    field_repo.commit("over the limit")
    code, output = cli(consul, "plan", *args)
    assert code == 1 and "over Consul's 524,288 byte value limit" in output, output
    code, output = cli(consul, "validate", "--rev", "HEAD", "--repo", str(field_repo.path))
    assert code == 1 and "error: the document would be about" in output, output
