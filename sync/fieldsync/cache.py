"""Validation results cached by (path, git blob id), so an unchanged tree re-validates without parsing."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import yaml

from . import __version__, schemas
from .fieldcheck import FileResult
from .problems import Problem


def default_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fieldsync"


class ResultCache:
    """A JSON file of per-file results; its name changes with the tool and schema versions."""

    def __init__(self, directory: Path) -> None:
        self.file = directory / f"validate-{__version__}-{yaml.__version__}-{schemas.digest()}.json"
        try:
            self._data: dict[str, list] = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self._data = {}
        self._dirty = False

    def get(self, path: str, blob_id: str) -> FileResult | None:
        hit = self._data.get(f"{path}\0{blob_id}")
        if hit is None:
            return None
        name, name_line, problems = hit
        return FileResult(path, name, name_line, tuple(Problem(path, *p) for p in problems))

    def put(self, result: FileResult, blob_id: str) -> None:
        problems = [[p.line, p.column, p.message] for p in result.problems]
        self._data[f"{result.path}\0{blob_id}"] = [result.name, result.name_line, problems]
        self._dirty = True

    def save(self) -> None:
        """Write atomically; a cache that cannot be written is skipped, never an error."""
        if not self._dirty:
            return
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.file.parent, prefix=".validate-")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self._data, f, separators=(",", ":"))
            os.replace(tmp, self.file)
        except OSError:
            pass
