"""status, plan and sync take their verdicts from the same guards, so they agree on every live document."""

from __future__ import annotations

import json

import pygit2
import pytest
from support.commands import cli, run_sync
from support.kv import client, hand_edit, live, run_record

from fieldsync.rules import document

DOCUMENTS = ["absent", "sealed", "edited_without_effect", "edited_with_overwrite"]


def _make_live(kind: str, agent, key: str, repo, prometheus: str) -> None:  # noqa: ANN001
    if kind == "absent":
        return
    assert run_sync(agent, repo, prometheus, key=key)[0] == 0
    if kind == "edited_without_effect":  # what extraction derives: sync refreshes it, nobody chose it
        hand_edit(agent, key, "company", regex="edited-by-hand")
    elif kind == "edited_with_overwrite":  # a chosen attribute: sync would overwrite a person's edit
        hand_edit(agent, key, "company", display_name="Typed In The UI")


def _kept(edits: list[dict]) -> list[str]:
    return [f"{e['field']}.{e['attribute']}" for e in edits]


@pytest.mark.parametrize("policy", ["refuse", "keep"])
@pytest.mark.parametrize("kind", DOCUMENTS)
def test_status_plan_and_sync_agree_on_hand_edits(kind: str, policy: str, consul, example_prometheus,
                                                  field_repo) -> None:
    prom = example_prometheus
    key = f"verdicts/{policy}/{kind}"
    args = ("--repo", str(field_repo.path), "--key", key, "--prometheus", prom.url, "--drift", policy)
    _make_live(kind, consul, key, field_repo.path, prom.url)
    if kind != "absent":
        assert document.is_sealed(live(consul, key)[0]) == (kind == "sealed")

    code, output = cli(consul, "status", *args, "--format", "json")
    edited = kind == "edited_with_overwrite"
    assert code == (5 if edited else 4 if kind == "absent" else 0), output  # hand edits pending, not at HEAD
    status = json.loads(output)
    code, output = cli(consul, "plan", *args, "--format", "json")
    assert code in (0, 2), output
    plan = json.loads(output)
    code, output = run_sync(consul, field_repo.path, prom.url, key=key, extra=("--drift", policy))
    assert code in (0, 3), output
    run = run_record(consul, key)["last"]

    verdicts = {"status": (status["drift"] is not None, _kept(status["hand_edits_kept"])),
                "plan": (plan["drift"], _kept(plan["hand_edits_kept"])),
                "sync": (code == 3, _kept(run.get("hand_edits_kept", [])))}
    expected = (edited and policy == "refuse", ["company.display_name"] if edited and policy == "keep" else [])
    assert verdicts == {"status": expected, "plan": expected, "sync": expected}, output


def test_status_names_where_the_live_commit_stands(consul, example_prometheus, field_repo) -> None:
    prom = example_prometheus
    key = "verdicts/position"
    args = ("status", "--repo", str(field_repo.path), "--key", key, "--prometheus", prom.url)
    older = field_repo.repo.head.target
    field_repo.write("fields/site.yaml", "name: site\ndisplay_name: Site Name\n")
    field_repo.commit("newer")
    assert run_sync(consul, field_repo.path, prom.url, key=key)[0] == 0
    assert ": up to date" in cli(consul, *args)[1]

    field_repo.repo.reset(older, pygit2.enums.ResetMode.HARD)  # this clone's HEAD is now behind the document
    output = cli(consul, *args)[1]
    assert ": ahead of HEAD by 1" in output
    code, synced = run_sync(consul, field_repo.path, prom.url, key=key)
    assert code == 3 and "refusing to roll back" in synced

    doc, index = live(consul, key)
    unknown = document.seal({**doc, "git": {**doc["git"], "commit": "f" * 40}})
    assert client(consul).kv.put(key, document.encode(unknown), cas=index)
    assert "ffffffffffff: unknown to this clone (fetch)" in cli(consul, *args)[1]

    client(consul).kv.put(key, json.dumps({"fields": []}))
    output = cli(consul, *args)[1]
    assert "built from not written by fieldsync" in output and "None" not in output
