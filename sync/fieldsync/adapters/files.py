"""Files on disk: field files of a work tree, reading a file whole, writing one atomically."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Callable

from ..errors import UsageError
from ..model import FIELD_SUFFIX, MAX_FIELD_FILE_BYTES, Entry

KnownIds = Callable[[str, tuple[int, ...]], "str | None"]


def blob_id(data: bytes) -> str:
    """The id git gives a blob with this content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _read_field_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(MAX_FIELD_FILE_BYTES + 1)  # enough to tell it is too large, never more


def _disk_entry(path: str, known_id: KnownIds) -> Entry:
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return Entry(path, "link")
    if stat.S_ISDIR(st.st_mode):
        return Entry(path, "dir")
    stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    known = known_id(path, stamp)
    if known:
        return Entry(path, "file", known, lambda: _read_field_file(path), stamp)
    data = _read_field_file(path)
    return Entry(path, "file", blob_id(data) if len(data) <= MAX_FIELD_FILE_BYTES else "", lambda: data, stamp)


def worktree_root(path: str) -> str | None:
    """The top of the work tree that holds `path`: the nearest directory, from it up, with a `.git` (a directory,
    or the file a linked work tree or a submodule has); None outside any. Found without opening the repository."""
    here = os.path.abspath(path if os.path.isdir(path) else os.path.dirname(path) or ".")
    while True:
        if os.path.exists(os.path.join(here, ".git")):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def worktree_entries(paths: list[str], known_id: KnownIds = lambda path, stamp: None) -> list[Entry]:
    """Entries for files and directories on disk; a directory contributes its direct children.

    `known_id(path, stamp)` may name the blob id of a file whose stat is unchanged, sparing the read.
    """
    entries: list[Entry] = []
    for path in paths:
        if not os.path.lexists(path):
            raise UsageError(f"{path}: no such file or directory")
        if os.path.isdir(path) and not os.path.islink(path):
            with os.scandir(path) as it:
                names = sorted(e.name for e in it)
            entries.extend(_disk_entry(os.path.join(path, n), known_id) for n in names)
        else:
            entries.append(_disk_entry(path, known_id))
    return entries


def field_names(directory: str) -> list[str]:
    """The names of the field files in a directory (none when it does not exist)."""
    if not os.path.isdir(directory):
        return []
    return sorted(f[: -len(FIELD_SUFFIX)] for f in os.listdir(directory) if f.endswith(FIELD_SUFFIX))


def read_bytes(path: str, what: str) -> bytes:
    """A file's bytes; a file that cannot be read is a UsageError naming `what` it is."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise UsageError(f"{what} {path}: {e.strerror}") from None


def write_atomically(path: str, text: str) -> None:
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".fieldsync-")
    mask = os.umask(0)
    os.umask(mask)
    try:
        os.fchmod(fd, 0o666 & ~mask)  # mkstemp makes 0600; a field file is an ordinary file of the repository
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
