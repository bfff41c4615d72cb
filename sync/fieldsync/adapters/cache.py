"""Validation results cached by (path, git blob id), with the content of a valid file, so an unchanged tree
re-validates (and sizes its document) without parsing."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from .. import __version__
from ..model import DocumentSize, Entry, FileResult, Problem

FORMAT = 2  # of the cache files: the contents of valid files are kept beside the results, and document sizes
KEEP_SIZES = 8  # document sizes kept, the most recent
_RACY_NS = 2_000_000_000  # a stamp this recent may miss a write in the same clock tick: not trusted
T = TypeVar("T")
Checked = tuple[list[Problem], list[FileResult]]  # a set of field files checked: its problems, each file's result


def _parser_stamp() -> str:
    """Which YAML parser results were made with, known without importing it (a warm run never parses)."""
    spec = importlib.util.find_spec("yaml")
    origin = spec.origin if spec is not None else None
    if origin is None:
        return "yaml"
    st = os.stat(origin)
    return hashlib.sha256(f"{origin}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()[:12]


def default_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fieldsync"


class ResultCache:
    """A JSON file of per-file results, and one of the valid files' contents, read only when asked for (a warm
    validate needs none); their names change with the tool version, the YAML parser and the schemas' digest."""

    def __init__(self, directory: Path, schema_digest: str) -> None:
        self.file = directory / f"validate{FORMAT}-{__version__}-{_parser_stamp()}-{schema_digest}.json"
        self.contents_file = self.file.with_suffix(".contents.json")
        try:
            saved = json.loads(self.file.read_text(encoding="utf-8"))
            self._data: dict[str, list] = saved["results"]
            self._stamps: dict[str, list] = saved["stamps"]
            self._sizes: dict[str, list] = saved["sizes"]
        except (OSError, ValueError, KeyError, TypeError):
            self._data, self._stamps, self._sizes = {}, {}, {}
        self._contents: dict[str, Any] | None = None
        self._dirty = self._contents_dirty = False

    def _all_contents(self) -> dict[str, Any]:
        if self._contents is None:
            try:
                loaded = json.loads(self.contents_file.read_text(encoding="utf-8"))
                self._contents = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                self._contents = {}
        return self._contents

    def content(self, path: str, blob_id: str) -> dict[str, Any] | None:
        """The parsed content of a valid file, if it was kept."""
        found = self._all_contents().get(f"{path}\0{blob_id}")
        return found if isinstance(found, dict) else None

    def size(self, key: str) -> DocumentSize | None:
        """The document size measured for the field files and config that `key` names, if it was."""
        hit = self._sizes.get(key)
        return DocumentSize(hit[0], hit[1], hit[2], estimate=True) if hit is not None else None

    def put_size(self, key: str, size: DocumentSize) -> None:
        self._sizes.pop(key, None)
        self._sizes[key] = [size.length, size.fields, size.servers]
        while len(self._sizes) > KEEP_SIZES:
            del self._sizes[next(iter(self._sizes))]
        self._dirty = True

    def known_id(self, path: str, stamp: tuple[int, ...]) -> str | None:
        """The blob id recorded for a disk file whose (mtime_ns, size, inode) are unchanged."""
        hit = self._stamps.get(path)
        return hit[3] if hit is not None and tuple(hit[:3]) == stamp else None

    def remember(self, entry: Entry) -> None:
        record = [*entry.stamp, entry.blob_id]
        trusted = entry.stamp and entry.blob_id and entry.stamp[0] < time.time_ns() - _RACY_NS
        if trusted and self._stamps.get(entry.path) != record:
            self._stamps[entry.path] = record
            self._dirty = True

    def get(self, path: str, blob_id: str) -> FileResult | None:
        hit = self._data.get(f"{path}\0{blob_id}")
        if hit is None:
            return None
        name, name_line, problems = hit
        return FileResult(path, name, name_line, tuple(Problem(path, *p) for p in problems))  # content: content()

    def put(self, result: FileResult, blob_id: str) -> None:
        problems = [[p.line, p.column, p.message, p.severity] for p in result.problems]
        self._data[f"{result.path}\0{blob_id}"] = [result.name, result.name_line, problems]
        if result.doc is not None:
            self._all_contents()[f"{result.path}\0{blob_id}"] = result.doc
            self._contents_dirty = True
        self._dirty = True

    def save(self) -> None:
        """Write atomically; a cache that cannot be written is skipped, never an error."""
        if self._contents_dirty and self._contents is not None:
            self._contents_dirty = not _write_json(self.contents_file, self._contents)
        if self._dirty:
            self._dirty = not _write_json(self.file, {"results": self._data, "stamps": self._stamps,
                                                      "sizes": self._sizes})


def _write_json(path: Path, value: Any) -> bool:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".validate-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(value, f, separators=(",", ":"))
        os.replace(tmp, path)
    except OSError:
        return False
    return True


class ParsedFiles:
    """Field files checked in this process, by (path, blob id), for the last two sets of files asked about: a sync
    reads its commit's files and then, in the steady state, the same files as the live document's commit; serve
    reads them on every run. Results are shared, never changed."""

    KEEP_COMMITS = 2

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: dict[tuple[str, str], FileResult] = {}
        self._previous: dict[tuple[str, str], FileResult] = {}
        self._commits: OrderedDict[tuple[str, str], Checked] = OrderedDict()

    def of_commit(self, repository: str, commit: str, check: Callable[[], Checked]) -> Checked:
        """The field files of a commit, checked once (a commit's files never change): the commits asked about last
        are kept, so a run that reads its commit and the live document's, the same one, reads it once."""
        with self._lock:
            hit = self._commits.get((repository, commit))
            if hit is not None:
                self._commits.move_to_end((repository, commit))
        if hit is None:
            hit = check()
            with self._lock:
                self._commits[(repository, commit)] = hit
                while len(self._commits) > self.KEEP_COMMITS:
                    self._commits.popitem(last=False)
        return hit

    def get(self, path: str, blob_id: str) -> FileResult | None:
        with self._lock:
            hit = self._current.get((path, blob_id)) or self._previous.get((path, blob_id))
            if hit is not None:
                self._current[(path, blob_id)] = hit
            return hit

    def put(self, result: FileResult, blob_id: str) -> None:
        with self._lock:
            self._current[(result.path, blob_id)] = result

    def remember(self, entry: Entry) -> None:
        """Stamps are the disk cache's business."""

    def save(self) -> None:
        """One set of files is done: it becomes the previous one, and what neither set holds is dropped."""
        with self._lock:
            self._previous, self._current = self._current, {}


class Decoded(Generic[T]):
    """The value last decoded from each key's raw value (its bytes, or a digest of them): a raw value read again
    unchanged (serve's steady state) is not decoded again. Values are shared, never changed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, tuple[bytes, T]] = {}

    def put(self, key: str, raw: bytes, value: T) -> None:
        """What `raw` decodes to, known without decoding it (the value just written)."""
        with self._lock:
            self._last[key] = (raw, value)

    def get(self, key: str, raw: bytes | None, decode: Callable[[], T]) -> T:
        with self._lock:
            hit = self._last.get(key)
        if raw is not None and hit is not None and hit[0] == raw:
            return hit[1]
        value = decode()
        with self._lock:
            if raw is None:
                self._last.pop(key, None)
            else:
                self._last[key] = (raw, value)
        return value
