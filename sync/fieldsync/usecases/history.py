"""history: the commits that changed one field's file, with the attribute-level change each made."""

from __future__ import annotations

from typing import Any

from ..adapters import git
from ..errors import UsageError
from ..model import FIELD_SUFFIX, FIELDS_DIR, FieldCommit
from ..rules import yamlload


def _parse(data: bytes | None) -> dict[str, Any]:
    if data is None:
        return {}
    try:
        parsed = yamlload.load(data.decode("utf-8"))
    except (yamlload.YamlError, UnicodeDecodeError) as e:
        return {"(unreadable)": str(e)}
    return parsed if isinstance(parsed, dict) else {"(not a mapping)": parsed}


def history(*, repo: str, field: str, rev: str = "HEAD", limit: int = 50) -> list[FieldCommit]:
    """Newest first; each commit compared with its first parent."""
    repository = git.open_repo(repo)
    path = f"{FIELDS_DIR}/{field}{FIELD_SUFFIX}"
    changes: list[FieldCommit] = []
    for commit, before, after in git.file_versions(repository, git.resolve_commit(repository, rev), path):
        old, new = _parse(before), _parse(after)
        attributes = {k: (old.get(k), new.get(k)) for k in [*old, *(k for k in new if k not in old)]
                      if old.get(k) != new.get(k)}
        kind = "added" if before is None else "removed" if after is None else "modified"
        author, when = git.author_line(commit)
        changes.append(FieldCommit(str(commit.id), author, when, commit.message.strip(), kind, attributes))
        if len(changes) >= limit:
            break
    if not changes:
        raise UsageError(f"no commit reachable from {rev} touches {path}")
    return changes
