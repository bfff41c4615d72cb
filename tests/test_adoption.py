"""Taking over a live document of the old system: import, plan "No changes", sync without --force, nothing lost."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pygit2
import pytest
from support import oldbackend
from support.commands import PINNED, cli, run_sync, synced
from support.gitrepo import GitRepo
from support.kv import client, hand_edit, records, run_record
from support.legacy import legacy_document, legacy_envelope, legacy_records

from fieldsync.rules import legacy, schemas
from fieldsync.rules.effective import baseline, effective

SHAPES = {"bare": legacy_document, "envelope": legacy_envelope}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_legacy_document_is_adopted_without_force(shape: str, consul, example_prometheus,
                                                    tmp_path) -> None:
    prom = example_prometheus
    key = f"adopt/{shape}"
    client(consul).kv.put(key, json.dumps(SHAPES[shape](), ensure_ascii=False).encode())
    repo = tmp_path / "fields-repo"
    code, output = cli(consul, "init", str(repo), "--prometheus", prom.url, "--key", key, "--fieldsync-source", PINNED)
    assert code == 0 and "hostname 172.16.1.26 (matched by external labels and fields)" in output, output
    git = GitRepo.open(repo)
    args = ("--repo", str(repo))  # key and servers come from the fieldsync.yaml init wrote

    code, output = cli(consul, "import", "--from-kv", *args)
    assert code == 0 and "taken into 23 file(s)" in output, output  # 22 fields, and fieldsync.yaml's order_ties
    assert "4 field(s) of equal order recorded" in output, output
    code, output = cli(consul, "validate", "--no-cache", *args)
    assert code == 0 and "warning: field_type select without options" in output, output
    code, output = cli(consul, "plan", "--worktree", *args)
    assert code == 0 and "No changes" in output, output
    git.commit("import fields from Consul KV")
    code, output = cli(consul, "sync", *args)
    assert code == 0 and "written" in output, output

    old_doc = SHAPES[shape]()
    old_doc = old_doc.get("data", old_doc)
    new_doc = json.loads(client(consul).kv.get(key)[1]["Value"])
    for reader in (legacy.discovered_in, legacy.site_labels, legacy.listing):  # what the old UI shows, identical
        assert reader(new_doc) == reader(old_doc), reader.__name__
    synced = records(consul, key)
    attributes = schemas.chosen_attributes()
    for old in legacy_records():
        base = baseline(old["name"])
        for attribute in attributes:
            assert synced[old["name"]][attribute] == effective(old, attribute, base), (old["name"], attribute)
    assert cli(consul, "plan", *args)[0] == 0


def test_plan_says_what_the_old_ui_would_show_differently_when_servers_are_named_otherwise(
        consul, example_prometheus, tmp_path) -> None:
    """Without Consul, init names the server after its URL: the old readers would lose "discovered in" at
    172.16.1.26 and its labels; plan says so rather than "No changes"."""
    prom = example_prometheus
    key = "adopt/renamed"
    client(consul).kv.put(key, json.dumps(legacy_document(), ensure_ascii=False).encode())
    repo = tmp_path / "fields-repo"
    code, output = cli(None, "init", str(repo), "--prometheus", prom.url, "--key", key, "--fieldsync-source", PINNED)
    assert code == 0 and "servers are named after their URLs: no Consul given" in output, output
    assert cli(consul, "import", "--from-kv", "--repo", str(repo))[0] == 0
    code, output = cli(consul, "plan", "--worktree", "--repo", str(repo))
    assert code == 2 and "0 to add, 0 to change, 0 to remove" in output, output
    assert 'discovered in: company: ["172.16.1.26"] -> ["127.0.0.1"]' in output
    assert "external labels of site 172.16.1.26" in output and "12 field(s) discovered elsewhere" in output


def test_init_makes_a_repository_to_adopt_in(tmp_path, example_config) -> None:
    prometheus_yml = tmp_path / "prometheus.yml"
    prometheus_yml.write_text(example_config)
    repo = tmp_path / "new"
    code, output = cli(None, "init", str(repo), "--prometheus", str(prometheus_yml), "--prometheus",
                       "http://prometheus.internal:9090", "--key", "platform/fields", "--fieldsync-source", PINNED)
    assert code == 0, output
    git = GitRepo.open(repo)
    head = git.repo.head
    assert head.name == "refs/heads/main"
    committed = {e.name for e in head.peel(pygit2.Commit).tree}
    assert committed == {"fieldsync.yaml", "schema", "fields", ".github", ".pre-commit-config.yaml"}
    assert (repo / "schema/field.schema.json").exists() and list((repo / "fields").iterdir()) == [
        repo / "fields/.gitkeep"]
    config = (repo / "fieldsync.yaml").read_text()
    assert "key: \"platform/fields\"" in config and "drift: keep" in config
    assert "hostname: \"prometheus.internal\"" in config
    code, output = cli(None, "validate", "--no-cache", "--repo", str(repo))
    assert code == 0 and output.startswith("0 field file(s) valid\nDocument: about "), output
    code, output = cli(None, "init", str(repo), "--fieldsync-source", PINNED)
    assert code == 2 and "not empty" in output


def test_what_the_old_ui_showed_is_kept(tmp_path, git_repo) -> None:
    doc = tmp_path / "doc.json"
    doc.write_text(json.dumps(legacy_document(), ensure_ascii=False))
    code, output = cli(None, "import", "--from-file", str(doc), "--repo", str(git_repo.path))
    assert code == 0, output
    orgao = (git_repo.path / "fields/orgao.yaml").read_text()  # created by its POST: no enabled, filter, registration
    assert "enabled: false" in orgao and "show_in_filter: false" in orgao
    assert "available_for_registration: false" in orgao
    cservice = (git_repo.path / "fields/cservice.yaml").read_text()  # a record lacking page flags: the UI shows them
    assert "show_in_hardware_exporters" not in cservice and "show_in_dashboard: true" in cservice
    vendor = (git_repo.path / "fields/vendor.yaml").read_text()
    assert "null" not in vendor and "options: [Dell, HP, Cisco, 42]" in vendor
    site = (git_repo.path / "fields/site.yaml").read_text()
    assert "category: localização" in site and "display_name: Localização" in site
    assert "validation: {required_message: Informe serviço consul, min_length: 1, max_length: 200}" in cservice


def test_plan_shows_a_filled_in_flag_that_the_ui_would_show_differently(consul, example_prometheus,
                                                                       field_repo) -> None:
    prom = example_prometheus
    key = "adopt/filled-in"
    assert run_sync(consul, field_repo.path, prom.url, key=key)[0] == 0
    doc = json.loads(client(consul).kv.get(key)[1]["Value"])
    for record in doc["fields"]:
        if record["name"] == "company":
            del record["enabled"]  # the old UI hides it; what sync writes (true) would show it
            record["regex"] = None  # refreshed by extraction: never a change
    client(consul).kv.put(key, json.dumps(doc))
    code, output = cli(consul, "plan", "--repo", str(field_repo.path), "--key", key, "--prometheus", prom.url,
                       "--format", "json", "--drift", "revert")
    assert code == 2, output
    plan = json.loads(output)
    assert plan["changed"] == {"company": {"enabled": {"before": False, "after": True}}}
    assert plan["refreshed"] == {"company": {"regex": {"before": None, "after": "(.*)"}}}


def test_the_old_backend_finds_every_server_by_hostname(consul, example_prometheus, field_repo,
                                                        tmp_path) -> None:
    from support.sites import SHARED, SITES, write_sites

    prom = example_prometheus
    key = "adopt/discovered-in"
    sites = write_sites(tmp_path / "sites")
    servers = "".join(f"  - {{name: {name}, file: {sites[name]}, hostname: '{SITES[name][0]}'}}\n" for name in SITES)
    field_repo.write("fieldsync.yaml", f"key: {key}\nprometheus:\n{servers}  - {{name: live, url: '{prom.url}'}}\n")
    field_repo.commit("three sites and a live Prometheus")
    code, output = cli(consul, "sync", "--repo", str(field_repo.path))
    assert code == 0, output

    doc = json.loads(client(consul).kv.get(key)[1]["Value"])
    entries = doc["extraction_status"]["server_status"]
    assert [e["hostname"] for e in entries] == [SITES[n][0] for n in SITES] + ["127.0.0.1"]
    assert all(e["from_cache"] is False and e["files_count"] >= 1 for e in entries)
    assert [e["files_count"] for e in entries] == [2, 2, 2, 1]
    # The old backend's reader: "discovered in" is every hostname whose entry lists the field.
    discovered = {r["name"]: set(oldbackend.discovered_in(r["name"], entries)) for r in doc["fields"]}
    sites_only = {SITES[n][0] for n in SITES}
    assert all(sites_only <= discovered[name] for name in SHARED)
    assert discovered["fabricante"] == {"11.144.0.21"}
    by_host = {e["hostname"]: e["external_labels"] for e in entries}
    assert by_host["172.16.1.26"] == {"cluster": "palmas-master", "datacenter": "palmas-to",
                                      "prometheus_instance": "172.16.1.26"}
    assert all(by_host[h] for h in sites_only)
    assert all(isinstance(r["source_label"], str) for r in doc["fields"])


def test_a_prewarm_then_a_ui_edit_one_sync_repairs_the_resets_and_keeps_the_edit(consul, example_prometheus,
                                                                                   field_repo) -> None:
    """CONTRACT.md: a restart's prewarm resets field_type and options of extracted records; the UI's edit after it
    keeps the prewarm's `source`. One sync tells them apart: the job's resets go, the person's edit stays."""
    from support.oldbackend import OldBackend, extracted_of

    prom = example_prometheus
    key = "adopt/prewarm-then-edit"
    field_repo.write("fields/company.yaml", "name: company\nfield_type: text\nicon: building\n")
    field_repo.commit("company is a text field with an icon")
    args = synced(consul, field_repo, prom.url, key)
    backend = OldBackend(consul, key, extracted_of(consul, key))
    assert backend.prewarm() == "merge"
    backend.edit("site", description="Edited in the UI after the restart")

    job = "rewritten by the old backend's startup prewarm (source 'prewarm_update_with_merge'), not by a person"
    code, output = cli(consul, "plan", *args)
    assert code == 2 and job in output and "env.options" in output and "company.field_type" in output, output
    code, output = cli(consul, "status", *args)
    assert code == 5 and job in output and "hand edits 1 kept, pending import" in output, output
    code, output = run_sync(consul, field_repo.path, prom.url, key=key)
    assert code == 0 and job in output and "1 hand edit(s) kept" in output, output

    written = records(consul, key)
    assert written["env"]["field_type"] == "select" and written["env"]["options"] == ["prod", "staging", "dev", "test"]
    assert written["company"]["field_type"] == "text" and written["company"]["icon"] == "building"
    assert written["site"]["description"] == "Edited in the UI after the restart"
    run = run_record(consul, key)["last"]
    assert [e["field"] for e in run["hand_edits_kept"]] == ["site"]
    assert run["job_rewrites"]["job"] == "prewarm"
    assert {(r["field"], r["attribute"]) for r in run["job_rewrites"]["attributes"]} >= {
        ("env", "options"), ("company", "field_type"), ("company", "icon")}
    code, output = cli(consul, "import", "--from-kv", *args, "--branch", "ui-edits")
    assert code == 0 and "1 hand edit(s) taken" in output, output
    branch = field_repo.repo.lookup_branch("ui-edits").peel(pygit2.Commit)
    assert branch.tree["fields/company.yaml"].data == field_repo.repo.head.peel(pygit2.Commit).tree[
        "fields/company.yaml"].data  # no reset reaches git
    assert cli(consul, "status", *args)[0] == 5


def test_adopting_a_document_the_old_backend_wrote_is_only_a_note(consul, git_repo, tmp_path) -> None:
    doc = tmp_path / "doc.json"
    doc.write_text(json.dumps(legacy_document("prewarm_startup"), ensure_ascii=False))
    code, output = cli(None, "import", "--from-file", str(doc), "--repo", str(git_repo.path))
    assert code == 0 and "startup prewarm (source 'prewarm_startup') was the last job to write" in output, output
    assert "people may have edited it since" in output


def test_a_key_the_old_backend_refilled_after_a_wipe_is_recovered(consul, example_prometheus,
                                                                  field_repo) -> None:
    """Its fallback refills an empty key from extraction alone: a job's write in every attribute. The rebuild
    brings git's fields back, with the hand edit that was pending before the wipe."""
    prom = example_prometheus
    key = "adopt/refilled"
    args = synced(consul, field_repo, prom.url, key)
    hand_edit(consul, key, "company", display_name="Pending In The UI")
    assert run_sync(consul, field_repo.path, prom.url, key=key)[0] == 0
    before = records(consul, key)
    client(consul).kv.delete(key)
    refill = legacy_document("initial_extraction")  # 22 records, 10 of which git and Prometheus do not have
    client(consul).kv.put(key, json.dumps(refill, ensure_ascii=False))
    code, output = cli(consul, "status", *args)
    assert code == 5 and "force-extract / empty-key fallback (source 'initial_extraction'), not by" in output, output
    assert "rewrote the live document after fieldsync wrote it" in output
    code, output = run_sync(consul, field_repo.path, prom.url, key=key)
    assert code == 3 and "would remove 10 of 22 fields" in output, output  # the refill's own fields
    code, output = run_sync(consul, field_repo.path, prom.url, key=key, extra=("--allow-delete",))
    assert code == 0 and "not by a person" in output and "1 hand edit(s) kept" in output, output
    after = records(consul, key)
    assert {n: after[n] for n in before} == before  # every field of git is back as it was, the hand edit too
    assert run_record(consul, key)["last"]["job_rewrites"]["job"] == "extraction"  # what the refill held


REAL = Path(__file__).resolve().parents[2] / "shared" / "skills-eye" / "prometheus"  # read in place, never copied


@pytest.mark.skipif(not REAL.is_dir(), reason="the old system's reference configs (../shared) are not beside this "
                                                "checkout")
def test_the_three_real_servers_by_hostname(consul, field_repo) -> None:
    """Its production servers' /etc/prometheus, read as directory sources (no server runs them: their
    remote_write and probe addresses are not on this machine). 21 fields each, as CONTRACT.md says."""
    key = "adopt/real-servers"
    hosts = {"palmas-master": "172.16.1.26", "rmd-ldc-rio-slave": "172.16.200.14", "dtc-genesis-slave": "11.144.0.21"}
    servers = "".join(f"  - {{name: {name}, file: '{REAL / name}', hostname: '{host}'}}\n"
                      for name, host in hosts.items())
    field_repo.write("fieldsync.yaml", f"key: {key}\nprometheus:\n{servers}")
    field_repo.commit("the three production servers")
    code, output = cli(consul, "sync", "--repo", str(field_repo.path))
    assert code == 0, output
    doc = json.loads(client(consul).kv.get(key)[1]["Value"])
    entries = {e["hostname"]: e for e in doc["extraction_status"]["server_status"]}
    assert list(entries) == list(hosts.values())
    for host, entry in entries.items():  # each site's external labels, from the file that has them
        assert entry["external_labels"]["prometheus_instance"] == host, entry["external_labels"]
    discovered = {r["name"]: set(oldbackend.discovered_in(r["name"], list(entries.values()))) for r in doc["fields"]}
    production = {n for n, hs in discovered.items() if hs == set(hosts.values())}
    assert len(production) == 21 and {"company", "localizacao", "tipo_monitoramento"} <= production


@pytest.mark.parametrize("name", ["validate", "sync"])
def test_init_writes_the_workflows_this_repository_runs(name: str) -> None:
    """One workflow each: the template differs from this repository's own only in how fieldsync is installed."""
    root = Path(__file__).resolve().parents[1]
    ours = (root / ".github/workflows" / f"{name}.yml").read_text().splitlines()
    template = (root / "sync/fieldsync/templates/github" / f"{name}.yml").read_text().splitlines()[1:]
    differ = [(a, b) for a, b in zip(ours, template, strict=True) if a != b]
    assert [b for _, b in differ] == [
        "      - name: Install fieldsync (pinned to a commit or a wheel hash, never a bare name from an index)",
        "        run: pip install -r .github/fieldsync-requirements.txt"]


def test_inits_workflows_install_fieldsync_pinned_and_nothing_by_a_bare_name(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    commit = str(pygit2.Repository(str(root)).head.target)
    remote = pygit2.clone_repository(str(root), str(tmp_path / "fieldsync.git"), bare=True)
    url = "https://git.example.com/platform/fieldsync.git"
    code, output = cli(None, "init", str(tmp_path / "new"), "--fieldsync-source", f"git+{url}@{commit}")
    assert code == 0 and f"the workflows install fieldsync @ git+{url}@{commit}" in output, output
    workflows = sorted((tmp_path / "new/.github/workflows").glob("*.yml"))
    linted = subprocess.run([str(Path(sys.executable).with_name("actionlint")), *map(str, workflows)],
                            capture_output=True, text=True)
    assert linted.returncode == 0 and len(workflows) == 2, linted.stdout + linted.stderr
    lines = [line.strip() for w in workflows for line in w.read_text().splitlines()]
    assert [line for line in lines if "pip " in line] == ["run: pip install -r .github/fieldsync-requirements.txt"] * 2
    uses = [line for line in lines if "uses:" in line]
    assert len(uses) == 4 and all(re.search(r"@[0-9a-f]{40}  # v", line) for line in uses), uses
    requirements_file = tmp_path / "new/.github/fieldsync-requirements.txt"
    requirements = [r for r in requirements_file.read_text().splitlines() if r and not r.startswith("#")]
    assert requirements[0] == f"fieldsync @ git+{url}@{commit}"
    assert all(re.fullmatch(r"[a-z0-9._-]+==[0-9][^\s]*", r) for r in requirements[1:]), requirements
    assert {"pygit2", "waitress", "attrs", "rpds-py"} <= {r.split("==")[0] for r in requirements[1:]}  # transitive
    # pip resolves the file with no index at all: fieldsync from the commit at the URL (git sends the URL to a bare
    # clone of this checkout), every dependency at its pinned version.
    git_config = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": f"url.{Path(remote.path).as_uri()}.insteadOf",
                  "GIT_CONFIG_VALUE_0": url}
    report = tmp_path / "report.json"
    pip = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--no-build-isolation",
           "--disable-pip-version-check", "--report", str(report), "-r", str(requirements_file)]
    resolved = subprocess.run(pip, capture_output=True, text=True, env={**os.environ, **git_config}, timeout=600)
    assert resolved.returncode == 0, resolved.stdout + resolved.stderr
    (installed,) = [i for i in json.loads(report.read_text())["install"] if i["metadata"]["name"] == "fieldsync"]
    assert installed["download_info"]["url"] == url and installed["download_info"]["vcs_info"]["commit_id"] == commit


def test_init_refuses_to_guess_where_the_workflows_install_fieldsync_from(tmp_path: Path) -> None:
    """The tests' fieldsync is an editable install from a directory no CI runner can reach."""
    code, output = cli(None, "init", str(tmp_path / "new"))
    assert code == 2 and "this fieldsync was installed from file://" in output, output
    assert "give --fieldsync-source git+https://HOST/PATH@COMMIT" in output and not (tmp_path / "new").exists()
    code, output = cli(None, "init", str(tmp_path / "new"), "--fieldsync-source", "fieldsync==0.1.0")
    assert code == 2 and "not a pinned source" in output and not (tmp_path / "new").exists()
