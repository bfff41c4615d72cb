"""Where field files come from: a working tree on disk, or a commit's tree read through pygit2."""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
from dataclasses import dataclass
from typing import Callable

import pygit2

from .errors import UsageError
from .fieldcheck import MAX_BYTES

FIELDS_DIR = "fields"


class SourceError(UsageError):
    """A path, repository or revision that cannot be read."""


@dataclass(frozen=True)
class Entry:
    """One directory entry under a fields directory. kind: 'file', 'dir' or 'link'."""

    path: str
    kind: str
    blob_id: str = ""  # git blob id of the content; "" when over the size limit (never cached)
    read: Callable[[], bytes] = bytes


def blob_id(data: bytes) -> str:
    """The id git gives a blob with this content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _disk_entry(path: str) -> Entry:
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return Entry(path, "link")
    if stat.S_ISDIR(st.st_mode):
        return Entry(path, "dir")
    with open(path, "rb") as f:
        data = f.read(MAX_BYTES + 1)  # enough to tell it is too large, never more
    return Entry(path, "file", blob_id(data) if len(data) <= MAX_BYTES else "", lambda: data)


def worktree_entries(paths: list[str]) -> list[Entry]:
    """Entries for files and directories on disk; a directory contributes its direct children."""
    entries = []
    for path in paths:
        if not os.path.lexists(path):
            raise SourceError(f"{path}: no such file or directory")
        if os.path.isdir(path) and not os.path.islink(path):
            with os.scandir(path) as it:
                names = sorted(e.name for e in it)
            entries.extend(_disk_entry(os.path.join(path, n)) for n in names)
        else:
            entries.append(_disk_entry(path))
    return entries


def open_repo(path: str) -> pygit2.Repository:
    found = pygit2.discover_repository(path)
    if found is None:
        raise SourceError(f"{path}: not inside a git repository")
    return pygit2.Repository(found)


def resolve_commit(repo: pygit2.Repository, rev: str) -> pygit2.Commit:
    try:
        return repo.revparse_single(rev).peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError) as e:
        raise SourceError(f"revision '{rev}' not found: {e}") from None


def git_entries(repo: pygit2.Repository, commit: pygit2.Commit, paths: list[str]) -> list[Entry]:
    """Entries of a commit's tree at the given repository-relative paths (files or directories)."""
    entries = []
    for path in paths:
        path = posixpath.normpath(path).lstrip("/")
        try:
            obj = commit.tree if path in ("", ".") else commit.tree[path]
        except KeyError:
            raise SourceError(f"{path}: not in commit {str(commit.id)[:12]}") from None
        if obj.type == pygit2.enums.ObjectType.TREE:
            tree = repo[obj.id]
            entries.extend(_git_entry(repo, posixpath.join(path, e.name), e) for e in tree)
        else:
            entries.append(_git_entry(repo, path, obj))
    return entries


def _git_entry(repo: pygit2.Repository, path: str, obj: pygit2.Object) -> Entry:
    if obj.filemode == pygit2.enums.FileMode.LINK:
        return Entry(path, "link")
    if obj.type == pygit2.enums.ObjectType.TREE:
        return Entry(path, "dir")
    oid = obj.id
    return Entry(path, "file", str(oid), lambda: repo[oid].data)
