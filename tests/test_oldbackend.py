"""`fieldsync serve` beside the old backend that keeps writing the same key (tests/support/oldbackend.py, written from
CONTRACT.md): its restarts, wipes and its UI's edits never cost a customization, and every UI edit reaches git."""

from __future__ import annotations

from pathlib import Path

import pygit2
from support import beside, kv
from support.commands import cli
from support.gitrepo import GitRepo, push

from fieldsync.localservers import ConsulAgent, Prometheus


def test_twenty_restarts_of_the_old_backend_beside_serve_lose_nothing(consul: ConsulAgent,
                                                                     example_prometheus: Prometheus,
                                                                     field_repo: GitRepo, tmp_path: Path) -> None:
    key = "old/restarts"
    beside.typed(field_repo)
    served, backend = beside.started(consul, field_repo, example_prometheus, tmp_path, key,
                                     "--push-hand-edits", "ui-edits")
    try:
        mark = len(served.events)
        restarts = beside.restarts(consul, key, backend, rounds=20)
        assert None not in restarts.seconds and restarts.lost == [], restarts  # 0 from git, 0 UI edits lost
        def repaired() -> list[dict]:  # the log and the metrics may trail the repair in Consul by a few ms
            return [e for e in served.syncs(mark) if e.get("job") == "prewarm"]
        assert beside.wait_until(lambda: len(repaired()) == 20, 10) is not None, served.log
        assert all("env.options" in e["job_rewrites"] for e in repaired())
        assert served.metric("fieldsync_job_rewrites_repaired_total", job="prewarm") == 20
        edits = len(restarts.expected) - len(beside.TYPES)
        assert served.metric("fieldsync_hand_edits_pending") == edits
        run = kv.run_record(consul, key)["last"]
        assert len(run["hand_edits_kept"]) == edits  # no reset listed as a hand edit
        assert all(e["attribute"] not in ("field_type", "options", "icon") for e in run["hand_edits_kept"])
        code, output = cli(consul, "status", "--repo", str(field_repo.path), "--key", key)
        assert code == 5 and "rewritten by the old backend's prewarm job" in output, output
    finally:
        assert served.stop() == 0, served.log
    remote = pygit2.Repository(str(tmp_path / "remote.git"))
    assert sorted(remote.branches.local) == ["main", "ui-edits"]
    tip = remote.branches["ui-edits"].peel(pygit2.Commit)
    states = [c for c in remote.walk(tip.id) if c.message.startswith("Hand edits in")]
    assert len(states) >= 5
    for commit in states:  # no state of the branch ever carries a reset
        files = {e.name: e.data.decode() for e in commit.tree["fields"]}
        assert "field_type: text" in files["company.yaml"] and "icon: building" in files["company.yaml"], commit.id
        assert "field_type: url" in files["site.yaml"] and "options: [prod, staging, dev, test]" in files["env.yaml"]
    final = {e.name: e.data.decode() for e in tip.tree["fields"]}
    assert all(f"{value}" in final[f"{name}.yaml"] for (name, attribute), value in restarts.expected.items()
               if attribute in ("description", "display_name")), final


def test_a_wiped_key_gets_every_pending_ui_edit_back_ten_times(consul: ConsulAgent, example_prometheus: Prometheus,
                                                               field_repo: GitRepo, tmp_path: Path) -> None:
    """Deleted alone, refilled by the old backend's empty-key fallback, or restored from its backup by its prewarm:
    the rebuild holds git's fields and every hand edit that was pending, whoever writes first."""
    key = "old/wiped"
    beside.typed(field_repo)
    served, backend = beside.started(consul, field_repo, example_prometheus, tmp_path, key)
    try:
        wipes = beside.wipes(consul, key, served, backend, rounds=10, pending=22)
        assert None not in wipes.seconds and wipes.lost == [], wipes
        assert served.metric("fieldsync_hand_edits_pending") == 22
        assert served.metric("fieldsync_job_rewrites_repaired_total", job="extraction") >= 1
    finally:
        assert served.stop() == 0, served.log


def test_a_conflict_holds_back_only_itself_and_is_loud(consul: ConsulAgent, example_prometheus: Prometheus,
                                                       field_repo: GitRepo, tmp_path: Path) -> None:
    key = "old/conflict"
    served, backend = beside.started(consul, field_repo, example_prometheus, tmp_path, key)
    try:
        beside.ui_edit(consul, key, backend, "company", display_name="Cliente (UI)")
        for path, text in (("fields/company.yaml", "name: company\ndisplay_name: Customer (git)\norder: 10\n"),
                           ("fields/site.yaml", "name: site\ndisplay_name: Site (git)\n")):  # and a later commit
            field_repo.write(path, text)
            commit = field_repo.commit(f"change {path}")
            push(field_repo)
            mark = len(served.events)
            assert served.deliver({"ref": "refs/heads/main", "after": commit})[0] == 202
            run = served.wait_for(lambda e, commit=commit: e["event"] == "sync" and e["commit"] == commit, after=mark)
            assert run["outcome"] == "written" and run["conflicts"] == ["company.display_name"], served.log
        records = kv.records(consul, key)
        assert records["site"]["display_name"] == "Site (git)"  # the later commit deploys
        assert records["company"]["display_name"] == "Cliente (UI)"  # the conflict keeps its live value
        assert served.metric("fieldsync_conflicts") == 1 and served.metric("fieldsync_commits_behind") == 0
        code, output = cli(consul, "status", "--repo", str(field_repo.path), "--key", key)
        assert code == 6 and "company.display_name" in output, output
    finally:
        assert served.stop() == 0, served.log


def test_ui_edits_reach_one_branch_with_every_state_in_its_history(consul: ConsulAgent,
                                                                   example_prometheus: Prometheus,
                                                                   field_repo: GitRepo, tmp_path: Path) -> None:
    """10 UI edits on distinct fields, some saved by a second backend process from its stale cache (the old
    system's own race): one branch, whose history holds every edit; deleted once git holds them all."""
    key = "old/branch"
    remote = tmp_path / "remote.git"
    served, backend = beside.started(consul, field_repo, example_prometheus, tmp_path, key, "--push-hand-edits",
                                     "ui-edits")
    try:
        branch = beside.one_branch(consul, key, served, backend, remote, edits=10)
        assert branch.branches == ["main", "ui-edits"] and branch.states == 10, branch
        assert branch.in_history == 10 and branch.in_latest == 10, branch  # the race lost none of them
        tip = pygit2.Repository(str(remote)).branches["ui-edits"].peel(pygit2.Commit)
        assert "fieldsync serve" in tip.author.name and "Observed in Consul by fieldsync serve" in tip.message

        work = GitRepo.open(field_repo.path)  # a person merges the branch, and main moves on
        work.repo.remotes["origin"].fetch(["+refs/heads/ui-edits:refs/remotes/origin/ui-edits"])
        theirs = work.repo.references["refs/remotes/origin/ui-edits"].target
        work.repo.merge(theirs)
        merged = work.repo.create_commit("HEAD", work.signature, work.signature, "Merge the UI edits",
                                         work.repo.index.write_tree(), [work.repo.head.target, theirs])
        work.repo.state_cleanup()
        work.repo.checkout_head(strategy=pygit2.enums.CheckoutStrategy.FORCE)
        push(work)
        mark = len(served.events)
        assert served.deliver({"ref": "refs/heads/main", "after": str(merged)})[0] == 202
        deleted = served.wait_for(lambda e: e["event"] == "push", after=mark)
        assert deleted["outcome"] == "deleted", served.log
        assert sorted(pygit2.Repository(str(remote)).branches.local) == ["main"]
        assert served.metric("fieldsync_hand_edits_pending") == 0
    finally:
        assert served.stop() == 0, served.log
    assert kv.run_record(consul, key)["last"]["hand_edits_kept"] == []
