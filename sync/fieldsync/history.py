"""history: the commits that changed one field's file, with the attribute-level change each made."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import yamlload
from .fieldcheck import SUFFIX
from .sources import FIELDS_DIR, local_time


@dataclass(frozen=True)
class Change:
    commit: str
    author: str
    when: str
    message: str
    kind: str  # added | modified | removed
    attributes: dict[str, tuple[Any, Any]]  # attribute -> (before, after); missing side is None


def _blob(tree: Any, path: str) -> Any:
    try:
        return tree[path]
    except KeyError:
        return None


def _parse(blob: Any) -> dict[str, Any]:
    if blob is None:
        return {}
    try:
        data = yamlload.load(blob.data.decode("utf-8"))
    except (yamlload.YamlError, UnicodeDecodeError) as e:
        return {"(unreadable)": str(e)}
    return data if isinstance(data, dict) else {"(not a mapping)": data}


def field_history(repo: Any, commit: Any, name: str, limit: int = 50) -> list[Change]:
    """Newest first; each commit compared with its first parent."""
    from pygit2.enums import SortMode

    path = f"{FIELDS_DIR}/{name}{SUFFIX}"
    changes: list[Change] = []
    for current in repo.walk(commit.id, SortMode.TOPOLOGICAL | SortMode.TIME):
        after = _blob(current.tree, path)
        before = _blob(current.parents[0].tree, path) if current.parents else None
        if (after.id if after else None) == (before.id if before else None):
            continue
        old, new = _parse(before), _parse(after)
        attributes = {k: (old.get(k), new.get(k)) for k in [*old, *(k for k in new if k not in old)]
                      if old.get(k) != new.get(k)}
        kind = "added" if before is None else "removed" if after is None else "modified"
        when = local_time(current.author.time, current.author.offset).strftime("%Y-%m-%d %H:%M %z")
        changes.append(Change(str(current.id), f"{current.author.name} <{current.author.email}>", when,
                              current.message.strip(), kind, attributes))
        if len(changes) >= limit:
            break
    return changes
