"""scaffold: YAML stubs for the fields Prometheus has that no file describes."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..adapters import files, git
from ..model import FIELD_SUFFIX, FIELDS_DIR, ScaffoldResult, ServerSpec
from ..rules.fieldtext import stub_text
from ..rules.merge import discover
from .extract import Fetch, extract, fetch, require_answers


def scaffold(*, repo: str, servers: Sequence[ServerSpec], branch: str | None = None,
             fetch: Fetch = fetch) -> ScaffoldResult:
    """Stubs written into the work tree, or with `branch`, committed on that new branch from HEAD."""
    statuses = extract(servers=servers, fetch=fetch)
    require_answers(statuses, "nothing scaffolded")
    if branch:
        repository = git.open_repo(repo)
        entries = git.git_entries(repository, git.resolve_commit(repository, "HEAD"), [FIELDS_DIR])
        existing = [os.path.basename(e.path)[: -len(FIELD_SUFFIX)] for e in entries if e.path.endswith(FIELD_SUFFIX)]
    else:
        existing = files.field_names(os.path.join(repo, FIELDS_DIR))
    have = {n.lower() for n in existing}
    stubs = {f"{FIELDS_DIR}/{name}{FIELD_SUFFIX}": stub_text(name, found)
             for name, found in sorted(discover(statuses).items()) if name.lower() not in have}
    if not stubs:
        return ScaffoldResult(statuses)
    if branch:
        commit = git.commit_files_on_branch(repository, branch, {p: t.encode("utf-8") for p, t in stubs.items()},
                                            f"Scaffold {len(stubs)} field(s) found in Prometheus")
        return ScaffoldResult(statuses, stubs, branch, commit)
    for path, text in stubs.items():
        files.write_atomically(os.path.join(repo, path), text)
    return ScaffoldResult(statuses, stubs)
