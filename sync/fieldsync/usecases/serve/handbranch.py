"""serve --push-hand-edits BRANCH: one branch on the remote that follows the hand edits pending in Consul.

Each change of the pending set is a new commit on it (its tree: the synced commit's files with the edits laid in,
conflicts taking the hand edit, as a pull request would propose them), so its history holds every edit anyone made,
even one a later write overwrote. A commit of the synced branch it lacks becomes its second parent, so the pull
request merges cleanly. Once git holds every edit the branch proposes, and none is pending, it is deleted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from ...adapters import git
from ...model import FIELDS_DIR, HandEdit
from ...rules import threeway
from ..imports import laid_in, read_current
from ..inputs import fields_of


class Outcome(Enum):
    COMMITTED = "committed"  # a new commit holds the pending set
    UNCHANGED = "unchanged"  # the branch already holds it
    DELETED = "deleted"  # git holds everything the branch proposed, and nothing is pending
    LEFT = "left"  # nothing is pending, but the branch proposes what git does not hold (reverted or overwritten)
    ABSENT = "absent"  # nothing is pending and there is no branch


@dataclass(frozen=True)
class Update:
    outcome: Outcome
    commit: str | None = None


def _text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _message(key: str, pending: Sequence[HandEdit], who: str, when: datetime) -> str:
    lines = [f"Hand edits in {key}: {len(pending)} pending import", ""]
    for edit in pending:
        conflict = (f" (conflict: git now holds {_text(edit.git)}; the hand edit is taken here)"
                    if edit.git != edit.base else "")
        lines.append(f"- {edit.label}: {_text(edit.base)} -> {_text(edit.live)}, seen {edit.seen}{conflict}")
    return "\n".join([*lines, "", f"Observed in Consul by fieldsync serve on {who} at {when.isoformat()}."])


def _proposes_only_what_git_holds(repository: Any, tip: str, head: str) -> bool:
    """Whether every attribute the branch changed since it left the synced branch has that value there now."""
    base = git.merge_base(repository, tip, head)
    before, after, now = (fields_of(repository, c) or {} for c in (base or head, tip, head))
    return all(threeway.value_in(now, name, attribute) == value
               for name, attribute, value in threeway.differences(before, after))


def update(repository: Any, repo: str, branch: str, key: str, pending: Sequence[HandEdit], credentials: Any,
           who: str, when: datetime) -> Update:
    """Bring `branch` on the remote in line with the `pending` hand edits (their values laid over HEAD's files),
    observed by replica `who` at `when`."""
    tip = git.fetch_tip(repository, branch, credentials)
    head = str(repository.head.target)
    if not pending:
        if tip is None:
            return Update(Outcome.ABSENT)
        if not _proposes_only_what_git_holds(repository, tip, head):
            return Update(Outcome.LEFT, tip)
        git.push_branch(repository, branch, credentials, delete=True)
        return Update(Outcome.DELETED, tip)
    texts = laid_in(list(pending), read_current(repository, repo, on_branch=True), repo)
    tree = git.tree_with(repository, {f"{FIELDS_DIR}/{os.path.basename(path)}": text.encode("utf-8")
                                      for path, text in texts.items()})
    merged = tip is not None and git.is_ancestor(repository, head, tip)
    if tip is not None and merged and tree == git.tree_of(repository, tip):
        return Update(Outcome.UNCHANGED, tip)
    parents = [*([tip] if tip is not None else []), *([] if merged else [head])]
    commit = git.commit_tree(repository, branch, tree, _message(key, pending, who, when), parents,
                             ("fieldsync serve", f"fieldsync@{who}", when))
    git.push_branch(repository, branch, credentials)
    return Update(Outcome.COMMITTED, commit)
