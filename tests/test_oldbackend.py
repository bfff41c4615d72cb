"""`fieldsync serve` beside the old backend that keeps writing the same key (tests/support/oldbackend.py, written from
CONTRACT.md): its restarts, wipes and its UI's edits never cost a customization, and every UI edit reaches git."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pygit2
from support import kv
from support.commands import cli
from support.gitrepo import GitRepo, bare_remote, push
from support.oldbackend import OldBackend, extracted_of
from support.serving import Served, secret_file, serve_clone

from fieldsync.localservers import ConsulAgent, Prometheus

TYPES = {("company", "field_type"): "text", ("company", "icon"): "building", ("site", "field_type"): "url",
         ("env", "field_type"): "select", ("env", "options"): ["prod", "staging", "dev", "test"]}


def _typed(repo: GitRepo) -> str:
    """Customizations the old backend's prewarm resets: a text, a url, an icon, and a select with options."""
    repo.write("fields/company.yaml", "name: company\ndisplay_name: Company\nfield_type: text\nicon: building\n"
                                      "order: 10\n")
    repo.write("fields/site.yaml", "name: site\nfield_type: url\norder: 50\n")
    return repo.commit("types the old UI cannot keep")


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until `condition` holds; fails after `timeout`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"{what} not within {timeout} s"
        time.sleep(0.02)
    return time.monotonic() - started


def _holds(agent: ConsulAgent, key: str, expected: dict[tuple[str, str], object]) -> bool:
    if kv.live(agent, key)[0] is None:
        return False
    records = kv.records(agent, key)
    return all(records[name].get(attribute) == value for (name, attribute), value in expected.items())


def _started(agent: ConsulAgent, repo: GitRepo, prometheus: Prometheus, tmp_path: Path, key: str,
             *extra: str) -> tuple[Served, OldBackend]:
    remote = bare_remote(tmp_path / "remote.git", repo)
    served = serve_clone(agent, remote, tmp_path / "work", prometheus.url, key, *extra,
                         secret=secret_file(tmp_path))
    served.wait_for(lambda e: e["event"] == "sync" and e["outcome"] == "written")
    return served, OldBackend(agent, key, extracted_of(agent, key))


def _ui_edit(served: Served, backend: OldBackend, field: str, **changes: object) -> None:
    """One edit in the old UI, waited for until serve has seen it."""
    mark = len(served.events)
    backend.edit(field, **changes)
    served.wait_for(lambda e: e["event"] == "sync" and "kv" in e["trigger"], after=mark)


def test_twenty_restarts_of_the_old_backend_beside_serve_lose_nothing(consul: ConsulAgent,
                                                                     example_prometheus: Prometheus,
                                                                     field_repo: GitRepo, tmp_path: Path) -> None:
    key = "old/restarts"
    _typed(field_repo)
    served, backend = _started(consul, field_repo, example_prometheus, tmp_path, key,
                               "--push-hand-edits", "ui-edits")
    expected = dict(TYPES)
    try:
        for n, field in enumerate(["cluster", "model", "rack", "team", "tier"]):
            _ui_edit(served, backend, field, description=f"typed in the UI {n}")
            expected[(field, "description")] = f"typed in the UI {n}"
        assert _holds(consul, key, expected)
        repairs = []
        for restart in range(20):
            mark = len(served.events)
            if restart % 4 == 3:  # a UI edit lands while its prewarm extracts, between its read and its write
                field = ["owner", "serial_number", "tenant", "zone", "url"][restart // 4]

                def edit_meanwhile(field: str = field, restart: int = restart) -> None:
                    _ui_edit(served, OldBackend(consul, key, backend.extracted), field, display_name=f"UI {restart}")
                backend.prewarm(during=edit_meanwhile)
                expected[(field, "display_name")] = f"UI {restart}"
            else:
                assert backend.prewarm() == "merge"
            repairs.append(_wait(lambda: _holds(consul, key, expected), 5, f"the repair of restart {restart}"))
            repaired = served.wait_for(lambda e: e["event"] == "sync" and e.get("job") == "prewarm", after=mark)
            assert repaired["hand_edits"] == len(expected) - len(TYPES) and "env.options" in repaired["job_rewrites"]
        assert served.metric("fieldsync_job_rewrites_repaired_total", job="prewarm") == 20
        assert served.metric("fieldsync_hand_edits_pending") == len(expected) - len(TYPES)
        print(f"repaired within {max(repairs):.3f} s (median {sorted(repairs)[10]:.3f} s) of each restart")

        run = kv.run_record(consul, key)["last"]
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
    assert all(f"{value}" in final[f"{name}.yaml"] for (name, attribute), value in expected.items()
               if attribute in ("description", "display_name")), final


def test_a_wiped_key_gets_every_pending_ui_edit_back_ten_times(consul: ConsulAgent, example_prometheus: Prometheus,
                                                               field_repo: GitRepo, tmp_path: Path) -> None:
    """Deleted alone, refilled by the old backend's empty-key fallback, or restored from its backup by its prewarm:
    the rebuild holds git's fields and every hand edit that was pending, whoever writes first."""
    key = "old/wiped"
    _typed(field_repo)
    served, backend = _started(consul, field_repo, example_prometheus, tmp_path, key)
    client = kv.client(consul)
    try:
        names = sorted(kv.records(consul, key))
        assert len(names) >= 22
        expected = dict(TYPES)
        for n, name in enumerate(names[:22]):
            backend.edit(name, placeholder=f"pending {n}")
            expected[(name, "placeholder")] = f"pending {n}"
        _wait(lambda: served.metric("fieldsync_hand_edits_pending") == 22, 10, "22 pending hand edits")
        backend.prewarm()  # leaves its backup behind, for the restores below
        _wait(lambda: _holds(consul, key, expected), 5, "the first repair")
        lost, rebuilds = 0, []
        for round_ in range(10):
            mark = len(served.events)
            client.kv.delete(key)
            if round_ % 3 == 1:
                backend.fallback()  # a read of its fields API finds the key empty
            elif round_ % 3 == 2:
                backend.prewarm()  # a restart finds it empty: restores its backup, then merges
            rebuilds.append(_wait(lambda: _holds(consul, key, expected), 10, f"the rebuild of round {round_}"))
            served.wait_for(lambda e: e["event"] == "sync" and e["outcome"] == "written", after=mark)
            records = kv.records(consul, key)
            lost += sum(records[name].get(attribute) != value for (name, attribute), value in expected.items())
        assert lost == 0
        print(f"rebuilt within {max(rebuilds):.3f} s of each wipe")
        assert served.metric("fieldsync_hand_edits_pending") == 22
    finally:
        assert served.stop() == 0, served.log


def test_a_conflict_holds_back_only_itself_and_is_loud(consul: ConsulAgent, example_prometheus: Prometheus,
                                                       field_repo: GitRepo, tmp_path: Path) -> None:
    key = "old/conflict"
    served, backend = _started(consul, field_repo, example_prometheus, tmp_path, key)
    try:
        _ui_edit(served, backend, "company", display_name="Cliente (UI)")
        field_repo.write("fields/company.yaml", "name: company\ndisplay_name: Customer (git)\norder: 10\n")
        conflict = field_repo.commit("company is a customer")
        push(field_repo)
        mark = len(served.events)
        assert served.deliver({"ref": "refs/heads/main", "after": conflict})[0] == 202
        run = served.wait_for(lambda e: e["event"] == "sync" and e["commit"] == conflict, after=mark)
        assert run["outcome"] == "written" and run["conflicts"] == ["company.display_name"], served.log

        field_repo.write("fields/site.yaml", "name: site\ndisplay_name: Site (git)\n")
        later = field_repo.commit("an unrelated field")
        push(field_repo)
        mark = len(served.events)
        assert served.deliver({"ref": "refs/heads/main", "after": later})[0] == 202
        run = served.wait_for(lambda e: e["event"] == "sync" and e["commit"] == later, after=mark)
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
    """10 UI edits on distinct fields, two of them saved by a second backend process from its stale cache (the old
    system's own race): one branch, whose history holds every edit; deleted once git holds them all."""
    key = "old/branch"
    served, backend = _started(consul, field_repo, example_prometheus, tmp_path, key, "--push-hand-edits",
                               "ui-edits")
    other = OldBackend(consul, key, backend.extracted)  # a second worker, with a cache of its own
    other.read(fresh=True)
    remote = pygit2.Repository(str(tmp_path / "remote.git"))
    try:
        names = [n for n in sorted(kv.records(consul, key)) if n not in ("company", "site")][:10]
        for n, name in enumerate(names):
            mark = len(served.events)
            (other if n in (4, 8) else backend).edit(name, description=f"edit {n}", fresh=n not in (4, 8))
            served.wait_for(lambda e: e["event"] == "push", after=mark)
        assert sorted(remote.branches.local) == ["main", "ui-edits"]
        tip = remote.branches["ui-edits"].peel(pygit2.Commit)
        history = [c for c in remote.walk(tip.id) if len(c.parents) and "Hand edits in" in c.message]
        assert len(history) == 10, [c.message for c in history]
        final = {e.name: e.data.decode() for e in tip.tree["fields"]}
        assert all(f"description: edit {n}" in final[f"{name}.yaml"] for n, name in enumerate(names)), final
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
        assert sorted(remote.branches.local) == ["main"]
        assert served.metric("fieldsync_hand_edits_pending") == 0
    finally:
        assert served.stop() == 0, served.log
    assert json.loads(json.dumps(kv.run_record(consul, key)["last"]["hand_edits_kept"])) == []
