"""Validation results cached by (path, git blob id), with the content of a valid file, so an unchanged tree
re-validates (and sizes its document) without parsing."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import yaml

from .. import __version__
from ..model import Entry, FileResult, Problem

FORMAT = 2  # of the cache file: a result holds the file's content too
_RACY_NS = 2_000_000_000  # a stamp this recent may miss a write in the same clock tick: not trusted


def default_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fieldsync"


class ResultCache:
    """A JSON file of per-file results; its name changes with the tool version and the schemas' digest."""

    def __init__(self, directory: Path, schema_digest: str) -> None:
        self.file = directory / f"validate{FORMAT}-{__version__}-{yaml.__version__}-{schema_digest}.json"
        try:
            saved = json.loads(self.file.read_text(encoding="utf-8"))
            self._data: dict[str, list] = saved["results"]
            self._stamps: dict[str, list] = saved["stamps"]
        except (OSError, ValueError, KeyError, TypeError):
            self._data, self._stamps = {}, {}
        self._dirty = False

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
        name, name_line, problems, doc = hit
        return FileResult(path, name, name_line, tuple(Problem(path, *p) for p in problems), doc)

    def put(self, result: FileResult, blob_id: str) -> None:
        problems = [[p.line, p.column, p.message, p.severity] for p in result.problems]
        self._data[f"{result.path}\0{blob_id}"] = [result.name, result.name_line, problems, result.doc]
        self._dirty = True

    def save(self) -> None:
        """Write atomically; a cache that cannot be written is skipped, never an error."""
        if not self._dirty:
            return
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.file.parent, prefix=".validate-")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"results": self._data, "stamps": self._stamps}, f, separators=(",", ":"))
            os.replace(tmp, self.file)
        except OSError:
            pass
