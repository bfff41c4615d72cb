"""The inputs of a sync or plan that do not come from Consul: the fields at a commit and what Prometheus yields."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ..adapters import files, git
from ..errors import FieldsyncError
from ..model import FIELDS_DIR, Entry, Inputs, ServerSpec
from ..rules.config import NO_SERVERS
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


def gather(repo_path: str, rev: str, servers: Sequence[ServerSpec], fetch: Fetch,
           worktree: bool = False) -> tuple[Any, Inputs]:
    """(the repository, the inputs): the fields at `rev` (validated: any problem stops here, before Consul) and
    what every server yields. With `worktree`, the fields are the files on disk, standing on `rev`."""
    if not servers:
        raise FieldsyncError(NO_SERVERS)
    repo = git.open_repo(repo_path)
    commit = git.resolve_commit(repo, rev)
    if worktree:
        directory = os.path.join(repo.workdir or repo_path, FIELDS_DIR)
        overrides = fields_at(files.worktree_entries([directory]), "the work tree")
    else:
        overrides = fields_at(git.git_entries(repo, commit, [FIELDS_DIR]), str(commit.id)[:12])
    return repo, Inputs(git.git_info(repo, commit, rev), overrides, extract_all(servers, fetch))


def require_answers(inputs: Inputs) -> None:
    if not any(s.success for s in inputs.statuses):
        errors = "; ".join(f"{s.name}: {s.error}" for s in inputs.statuses)
        raise FieldsyncError(f"no Prometheus server answered, nothing written ({errors})")
