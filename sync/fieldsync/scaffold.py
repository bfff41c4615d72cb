"""scaffold: YAML stubs for the fields Prometheus has that no file describes, with the defaults as comments."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from . import schemas
from .fieldcheck import SUFFIX
from .fieldwriter import HEADER
from .merge import Discovery, display_name
from .sources import FIELDS_DIR


def stub(name: str, found: Discovery) -> str:
    rule = found.rule
    lines = [HEADER.rstrip("\n"),
             f"# Discovered in {', '.join(found.servers)}: source label {rule.source_label or '(none)'}, "
             f"regex {rule.regex}, replacement {rule.replacement}.",
             "# Uncomment and change what should differ from the defaults shown.",
             f"name: {name}"]
    for key, spec in schemas.field_properties().items():
        if key == "name":
            continue
        value = display_name(name) if key == "display_name" else spec.get("default")
        choices = f"  # one of: {', '.join(spec['enum'])}" if "enum" in spec else ""
        lines.append(f"# {key}: {json.dumps(value, ensure_ascii=False)}{choices}")
    return "\n".join(lines) + "\n"


def stubs(discovered: dict[str, Discovery], existing: Iterable[str]) -> dict[str, str]:
    """{path: text} for every discovered field without a file."""
    have = {n.lower() for n in existing}
    return {f"{FIELDS_DIR}/{name}{SUFFIX}": stub(name, found)
            for name, found in sorted(discovered.items()) if name.lower() not in have}


def commit_on_branch(repo: Any, branch: str, files: dict[str, str], message: str) -> str:
    """Commit `files` on a new branch from HEAD, through git objects only (the work tree is not touched)."""
    import pygit2

    if repo.lookup_branch(branch) is not None:
        raise ValueError(f"branch '{branch}' already exists")
    head = repo.head.peel(pygit2.Commit)
    try:
        fields_tree = head.tree[FIELDS_DIR]
        builder = repo.TreeBuilder(fields_tree)
    except KeyError:
        builder = repo.TreeBuilder()
    for path, text in files.items():
        builder.insert(path.split("/", 1)[1], repo.create_blob(text.encode("utf-8")), pygit2.enums.FileMode.BLOB)
    root = repo.TreeBuilder(head.tree)
    root.insert(FIELDS_DIR, builder.write(), pygit2.enums.FileMode.TREE)
    try:
        signature = repo.default_signature
    except (KeyError, pygit2.GitError):
        signature = pygit2.Signature("fieldsync", "fieldsync@localhost")
    oid = repo.create_commit(f"refs/heads/{branch}", signature, signature, message, root.write(), [head.id])
    return str(oid)
