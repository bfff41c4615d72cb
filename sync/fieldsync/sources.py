"""Where field files come from: a working tree on disk, or a commit's tree read through pygit2."""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from .errors import UsageError
from .fieldcheck import MAX_BYTES

if TYPE_CHECKING:
    import pygit2

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
    stamp: tuple[int, ...] = ()  # disk files: (mtime_ns, size, inode), to know the blob id without reading


KnownIds = Callable[[str, tuple[int, ...]], "str | None"]


def blob_id(data: bytes) -> str:
    """The id git gives a blob with this content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(MAX_BYTES + 1)  # enough to tell it is too large, never more


def _disk_entry(path: str, known_id: KnownIds) -> Entry:
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return Entry(path, "link")
    if stat.S_ISDIR(st.st_mode):
        return Entry(path, "dir")
    stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    known = known_id(path, stamp)
    if known:
        return Entry(path, "file", known, lambda: _read_file(path), stamp)
    data = _read_file(path)
    return Entry(path, "file", blob_id(data) if len(data) <= MAX_BYTES else "", lambda: data, stamp)


def worktree_entries(paths: list[str], known_id: KnownIds = lambda path, stamp: None) -> list[Entry]:
    """Entries for files and directories on disk; a directory contributes its direct children.

    `known_id(path, stamp)` may name the blob id of a file whose stat is unchanged, sparing the read.
    """
    entries = []
    for path in paths:
        if not os.path.lexists(path):
            raise SourceError(f"{path}: no such file or directory")
        if os.path.isdir(path) and not os.path.islink(path):
            with os.scandir(path) as it:
                names = sorted(e.name for e in it)
            entries.extend(_disk_entry(os.path.join(path, n), known_id) for n in names)
        else:
            entries.append(_disk_entry(path, known_id))
    return entries


def open_repo(path: str) -> pygit2.Repository:
    import pygit2

    found = pygit2.discover_repository(path)
    if found is None:
        raise SourceError(f"{path}: not inside a git repository")
    return pygit2.Repository(found)


def resolve_commit(repo: pygit2.Repository, rev: str) -> pygit2.Commit:
    import pygit2

    try:
        return repo.revparse_single(rev).peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError) as e:
        raise SourceError(f"revision '{rev}' not found: {e}") from None


def local_time(seconds: int, offset_minutes: int) -> datetime:
    """A git timestamp in the time zone it was recorded in."""
    return datetime.fromtimestamp(seconds, tz=timezone(timedelta(minutes=offset_minutes)))


def git_entries(repo: pygit2.Repository, commit: pygit2.Commit, paths: list[str]) -> list[Entry]:
    """Entries of a commit's tree at the given repository-relative paths (files or directories)."""
    from pygit2.enums import ObjectType

    entries = []
    for path in paths:
        path = posixpath.normpath(path).lstrip("/")
        try:
            obj = commit.tree if path in ("", ".") else commit.tree[path]
        except KeyError:
            raise SourceError(f"{path}: not in commit {str(commit.id)[:12]}") from None
        if obj.type == ObjectType.TREE:
            tree = repo[obj.id]
            entries.extend(_git_entry(repo, posixpath.join(path, e.name), e) for e in tree)
        else:
            entries.append(_git_entry(repo, path, obj))
    return entries


def _git_entry(repo: pygit2.Repository, path: str, obj: pygit2.Object) -> Entry:
    from pygit2.enums import FileMode, ObjectType

    if obj.filemode == FileMode.LINK:
        return Entry(path, "link")
    if obj.type == ObjectType.TREE:
        return Entry(path, "dir")
    oid = obj.id
    return Entry(path, "file", str(oid), lambda: repo[oid].data)
