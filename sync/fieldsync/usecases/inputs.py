"""The inputs of a sync or plan that do not come from Consul: the fields at a commit and what Prometheus yields."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ..adapters import files, git
from ..errors import FieldsyncError
from ..model import FIELDS_DIR, Document, Entry, Inputs, Lineage, Position, ServerSpec
from ..rules import document, guards
from ..rules.config import NO_SERVERS
from . import extract
from .extract import Fetch, extract_all
from .validate import check_entries


def fields_at(entries: list[Entry], where: str) -> dict[str, dict[str, Any]]:
    """The valid field overrides among `entries`; any error refuses the sync before Consul is touched (warnings
    do not)."""
    found, results = check_entries(entries)
    problems = [p for p in found if p.is_error]
    if problems:
        listing = "\n".join(p.text() for p in problems[:50])
        more = f"\n… and {len(problems) - 50} more" if len(problems) > 50 else ""
        raise FieldsyncError(f"fields at {where} are invalid; nothing written:\n{listing}{more}")
    return {r.name: r.doc for r in results if r.name is not None and r.doc is not None}


def read_fields(repo_path: str, rev: str, worktree: bool = False) -> tuple[Any, Inputs]:
    """(the repository, the inputs without extraction): the fields at `rev`, validated (any error stops here,
    before Consul). With `worktree`, the fields are the files on disk, standing on `rev`."""
    repo = git.open_repo(repo_path)
    commit = git.resolve_commit(repo, rev)
    if worktree:
        directory = os.path.join(repo.workdir or repo_path, FIELDS_DIR)
        entries = files.worktree_entries([directory]) if os.path.isdir(directory) else []
        overrides = fields_at(entries, "the work tree")
    else:
        overrides = fields_at(git.field_entries(repo, commit), str(commit.id)[:12])
    return repo, Inputs(git.git_info(repo, commit, rev), overrides, [])



def gather(repo_path: str, rev: str, servers: Sequence[ServerSpec], fetch: Fetch,
           worktree: bool = False) -> tuple[Any, Inputs]:
    """(the repository, the inputs): the fields at `rev` and what every server yields."""
    if not servers:
        raise FieldsyncError(NO_SERVERS)
    repo, inputs = read_fields(repo_path, rev, worktree)
    return repo, replace(inputs, statuses=extract_all(servers, fetch))


def locate(repo: Any, live: Document | None, ours: str) -> Position:
    """Where the commit the live document names stands against `ours` ("" for a repository with no commit yet)."""
    live_commit = document.built_from(live)
    counts = git.ahead_behind(repo, ours, live_commit) if live_commit and ours else None
    return guards.position(live, ours, counts)


def base_overrides(repo: Any, where: Position) -> dict[str, dict[str, Any]] | None:
    """The field files at the commit the live document names: the base of hand edits. Empty (the defaults) for a
    document with no fieldsync provenance; None when this clone lacks that commit."""
    if where.lineage in (Lineage.ABSENT, Lineage.FOREIGN):
        return {}
    if where.lineage is Lineage.UNKNOWN or not where.live_commit:
        return None
    _, results = check_entries(git.field_entries(repo, git.resolve_commit(repo, where.live_commit)))
    return {r.name: r.doc for r in results if r.name is not None and r.doc is not None}


def require_answers(inputs: Inputs) -> None:
    extract.require_answers(inputs.statuses, "nothing written")
