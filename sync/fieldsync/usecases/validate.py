"""validate: field files of a work tree or a commit, checked file by file (through the cache), then across files."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..adapters import files
from ..adapters.cache import ParsedFiles, ResultCache, default_dir
from ..model import CONFIG_FILE, FIELDS_DIR, DocumentSize, Entry, FileResult, Problem, Validation
from ..rules import document, guards, schemas
from ..rules.fieldcheck import check_file, check_names, is_ignored, layout_problem


def check_entries(entries: list[Entry], cache: ResultCache | ParsedFiles | None = None
                  ) -> tuple[list[Problem], list[FileResult]]:
    """All problems (sorted) and the per-file results; results read fresh carry the parsed document."""
    problems: list[Problem] = []
    results: list[FileResult] = []
    for entry in entries:
        if is_ignored(entry.path):
            continue
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


def validate(*, repo: str, paths: Sequence[str] = (), rev: str | None = None, cache_dir: Path | None = None,
             use_cache: bool = True) -> Validation:
    """The files at `paths` (default: the repo's fields/) on disk, or with `rev` in that commit's tree; for the whole
    of fields/, also the size of the document they make with the servers of fieldsync.yaml."""
    cache = ResultCache(cache_dir or default_dir(), schemas.digest()) if use_cache else None
    repo = files.worktree_root(repo) or repo
    if rev is None:
        targets = [os.path.normpath(p) for p in paths or [os.path.join(repo, FIELDS_DIR)]]
        entries = files.worktree_entries(targets, cache.known_id) if cache else files.worktree_entries(targets)
        config = os.path.join(repo, CONFIG_FILE)
        committed = (config, files.read_bytes(config, "config") if os.path.exists(config) else None)
    else:
        from ..adapters import git  # only here and for files given: pygit2 is slow to import

        repository = git.open_repo(repo)
        commit = git.resolve_commit(repository, rev)
        entries = git.git_entries(repository, commit, list(paths) or [FIELDS_DIR])
        committed = (f"{CONFIG_FILE} at {rev}", git.read_at(repository, str(commit.id), CONFIG_FILE))
    problems, results = check_entries(entries, cache)
    if rev is None and paths:
        problems = sorted(set(problems) | set(_names_against_committed(repo, results, cache)))
    size = None
    if not paths and not any(p.is_error for p in problems):
        size = _size(repo, entries, results, committed, cache)
        headroom = guards.size_headroom(size)
        problems.extend([Problem(os.path.join(repo, FIELDS_DIR), 1, 1, headroom[1], headroom[0])] if headroom else [])
    return Validation(problems, sum(not is_ignored(e.path) for e in entries), size)


def _names_against_committed(repo: str, results: list[FileResult], cache: ResultCache | None) -> list[Problem]:
    """For some files (what a pre-commit hook passes): their names against the committed field files they do not
    replace, so a staged file cannot take a name the tree already has."""
    from ..adapters import git

    root = files.worktree_root(repo)
    fields_dir = os.path.realpath(os.path.join(root, FIELDS_DIR)) if root else None
    if fields_dir is None or any(os.path.dirname(os.path.realpath(r.path)) != fields_dir for r in results):
        return []  # files of no repository's fields/: there is no committed tree to check them against
    repository = git.open_repo(repo)
    if repository.head_is_unborn:
        return []
    given = {os.path.basename(r.path) for r in results}
    committed = git.field_entries(repository, git.resolve_commit(repository, "HEAD"))
    _, established = check_entries([e for e in committed if os.path.basename(e.path) not in given], cache)
    return check_names(results, established)


def _size(repo: str, entries: list[Entry], results: list[FileResult], config: tuple[str, bytes | None],
          cache: ResultCache | None) -> DocumentSize:
    """The size of the document the field files make with the servers of the config: measured once for the same
    files (by blob id) and the same config."""
    known = [(e.path, e.blob_id) for e in entries if not is_ignored(e.path)]
    key = None
    if cache is not None and all(blob for _, blob in known):
        digest = hashlib.sha256(json.dumps([known, (config[1] or b"").decode("utf-8", "replace")]).encode())
        key = digest.hexdigest()
        if (hit := cache.size(key)) is not None:
            return hit
    from .settings import load_config  # reads YAML: imported when the size is not known yet

    overrides = _contents(entries, results, cache)
    size = document.estimate(overrides, load_config(None, repo, config).servers)
    if cache is not None and key is not None:
        cache.put_size(key, size)
        cache.save()
    return size


def _contents(entries: list[Entry], results: list[FileResult], cache: ResultCache | None) -> dict[str, Any]:
    """The content of each valid field file by name: as parsed, else as the cache kept it, else parsed again."""
    by_path = {e.path: e for e in entries}
    found = {}
    for result in results:
        if result.name is None or not result.valid:
            continue
        entry = by_path[result.path]
        doc = result.doc or (cache.content(entry.path, entry.blob_id) if cache else None)
        found[result.name] = doc if doc is not None else check_file(entry.path, entry.read()).doc
    return found
