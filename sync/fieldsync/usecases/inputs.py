"""The inputs of a sync or plan that do not come from Consul: the fields at a commit and what Prometheus yields."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..adapters import files, git
from ..adapters.cache import Checked, ParsedFiles
from ..errors import FieldsyncError
from ..model import (
    FIELDS_DIR,
    Document,
    HandEdit,
    Inputs,
    JobRewrite,
    JobWrite,
    Lineage,
    Position,
    ServerSpec,
    Written,
)
from ..rules import document, guards, legacy, threeway
from ..rules.config import NO_SERVERS
from . import extract
from .extract import Fetch, extract_all
from .validate import check_entries

PARSED = ParsedFiles()  # each version of a field file is parsed once, whether a run reads it twice or runs repeat


def _commit_files(repo: Any, commit: Any) -> Checked:
    return PARSED.of_commit(repo.path, str(commit.id), lambda: check_entries(git.field_entries(repo, commit), PARSED))


def _valid(checked: Checked, where: str) -> dict[str, dict[str, Any]]:
    """The field overrides of a set of checked files; any error refuses the sync before Consul is touched (warnings
    do not)."""
    found, results = checked
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
        overrides = _valid(check_entries(entries, PARSED), "the work tree")
    else:
        overrides = _valid(_commit_files(repo, commit), str(commit.id)[:12])
    return repo, Inputs(git.git_info(repo, commit, rev), overrides, [])


def gather(repo_path: str, rev: str, servers: Sequence[ServerSpec], fetch: Fetch, worktree: bool = False,
           order_ties: Sequence[str] = ()) -> tuple[Any, Inputs]:
    """(the repository, the inputs): the fields at `rev` and what every server yields."""
    if not servers:
        raise FieldsyncError(NO_SERVERS)
    repo, inputs = read_fields(repo_path, rev, worktree)
    return repo, replace(inputs, statuses=extract_all(servers, fetch), order_ties=tuple(order_ties))


def locate(repo: Any, live: Document | None, ours: str) -> Position:
    """Where the commit the live document names stands against `ours` ("" for a repository with no commit yet)."""
    live_commit = document.built_from(live)
    counts = git.ahead_behind(repo, ours, live_commit) if live_commit and ours else None
    return guards.position(live, ours, counts)


def fields_of(repo: Any, commit: str) -> dict[str, dict[str, Any]] | None:
    """The valid field files of a commit; None when this clone lacks it."""
    if not git.has_commit(repo, commit):
        return None
    _, results = _commit_files(repo, git.resolve_commit(repo, commit))
    return {r.name: r.doc for r in results if r.name is not None and r.doc is not None}


@dataclass(frozen=True)
class Observed:
    """Who changed what in the live document since fieldsync wrote it (rules/threeway.py)."""

    where: Position
    pending: list[HandEdit]  # hand edits pending now, before git's changes are weighed against them
    rewrites: list[JobRewrite]
    job: JobWrite | None  # the old backend's job that wrote the document since fieldsync did, if one did
    base_known: bool = True  # False: the document names a commit this clone lacks, so nothing can be told
    deleted: frozenset[str] = frozenset()  # fields whose files git deleted since the ancestor


def observe(repo: Any, live: Document | None, meta: Mapping[str, Any], last: Written | None, ours: str,
            git_now: Mapping[str, Any], now: str, sealed: bool) -> Observed:
    """Three-way, against the version of fieldsync's the live document started from (its ancestor: the commit it
    names with the hand edits it says it holds; for a document with no provenance, what fieldsync `last` wrote; for
    one fieldsync never wrote, the defaults). `last` (the run record's) is what fieldsync wrote most recently; a
    `sealed` document (exactly what fieldsync wrote) describes itself."""
    where = locate(repo, live, ours)
    job = legacy.last_job(live, meta)
    latest = list(last.edits) if last is not None else []
    if where.lineage is Lineage.UNKNOWN:
        return Observed(where, latest, [], job, base_known=False)
    overrides = fields_of(repo, where.live_commit) if where.live_commit else None
    if overrides is not None:
        ancestor = threeway.Version(overrides, document.held_edits(live))
        assert live is not None
        if last is None or (sealed and live.get("content_hash") != last.content_hash):
            latest = list(ancestor.held)  # a document exactly as fieldsync wrote it says it all
    elif last is not None and (last_fields := fields_of(repo, last.commit)) is not None:
        ancestor = threeway.Version(last_fields, last.edits)  # emptied, or rebuilt afresh
        job = JobWrite(job.job, job.named_by, refill=True) if job is not None else None
    else:
        ancestor, job = threeway.Version(), None  # never written by fieldsync: every customization is a person's
    records = [] if live is None or sealed else live.get("fields") or []  # sealed: no record changed
    pending, rewrites = threeway.observe(records, ancestor, latest, job, now)
    return Observed(where, pending, rewrites, job, deleted=frozenset(ancestor.overrides) - frozenset(git_now))


def require_answers(inputs: Inputs) -> None:
    extract.require_answers(inputs.statuses, "nothing written")
