"""Validate a set of field file entries: layout, each file (through the cache), then cross-file rules."""

from __future__ import annotations

from .cache import ResultCache
from .fieldcheck import FileResult, check_file, check_names, layout_problem
from .problems import Problem
from .sources import Entry


def validate(entries: list[Entry], cache: ResultCache | None = None) -> tuple[list[Problem], list[FileResult]]:
    """All problems (sorted) and the per-file results; results read fresh carry the parsed document."""
    problems: list[Problem] = []
    results: list[FileResult] = []
    for entry in entries:
        misplaced = layout_problem(entry.path, entry.kind)
        if misplaced:
            problems.append(misplaced)
            continue
        result = cache.get(entry.path, entry.blob_id) if cache and entry.blob_id else None
        if result is None:
            result = check_file(entry.path, entry.read())
            if cache and entry.blob_id:
                cache.put(result, entry.blob_id)
        if cache:
            cache.remember(entry)
        results.append(result)
        problems.extend(result.problems)
    problems.extend(check_names(results))
    if cache:
        cache.save()
    return sorted(problems), results
