"""import: take the hand edits of a live document (the old system's included) into field files, three-way.

Only hand edits are written (what the live document holds against what its own commit produced), on top of the files
git holds now, so a commit merged after the live document was written is never reverted. A document with no
fieldsync provenance (adoption) has the defaults as its base: every customization it holds is a hand edit.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from ..adapters import files, git
from ..adapters.consul import ConsulKV
from ..errors import FieldsyncError, UsageError
from ..model import CONFIG_FILE, FIELD_SUFFIX, FIELDS_DIR, Document, HandEdit, ImportResult
from ..rules import document, guards, legacy, threeway, yamlload
from ..rules.config import parse_config, with_order_ties
from ..rules.effective import baseline, ignored
from ..rules.fieldcheck import check_file, check_names
from ..rules.fieldtext import field_text
from . import runlog
from .inputs import observe
from .plan import utc_now


@dataclass(frozen=True)
class FieldFile:
    path: str  # where it is written (work tree) or named (branch)
    text: str | None  # None: no file yet
    values: dict[str, Any]


def read_current(repository: Any, repo: str, on_branch: bool) -> dict[str, FieldFile]:
    """The field files git holds now: the work tree's, or HEAD's when the result goes on a branch."""
    directory = os.path.join(repo, FIELDS_DIR)
    if on_branch:
        entries = git.field_entries(repository, git.resolve_commit(repository, "HEAD"))
        texts = {os.path.basename(e.path): e.read() for e in entries if e.path.endswith(FIELD_SUFFIX)}
    else:
        texts = {f"{n}{FIELD_SUFFIX}": files.read_bytes(os.path.join(directory, f"{n}{FIELD_SUFFIX}"), "field file")
                 for n in files.field_names(directory)}
    current = {}
    for filename, data in texts.items():
        path = os.path.join(directory, filename)
        try:
            text = data.decode("utf-8")
            values = yamlload.load(text) or {}
        except UnicodeDecodeError:
            raise FieldsyncError(f"{path}: not valid UTF-8; fix it before importing") from None
        except yamlload.YamlError as e:
            raise FieldsyncError(f"{path}:{e.line}:{e.column}: {e.message}; fix it before importing") from None
        if not isinstance(values, dict):
            raise FieldsyncError(f"{path}: not a mapping of attributes; fix it before importing")
        current[filename[: -len(FIELD_SUFFIX)]] = FieldFile(path, text, values)
    return current


def _records(doc: Document) -> list[dict[str, Any]]:
    records = [r for r in doc.get("fields") or [] if isinstance(r, dict)]
    names = [str(r.get("name", "")) for r in records]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates or "" in names:
        raise FieldsyncError(f"the document has records without a name or with the same name: {duplicates}")
    return records


def _new_texts(edits: list[HandEdit], current: dict[str, FieldFile], fields_dir: str) -> dict[str, str]:
    """{path: text} of every file the edits change: an edit to the default removes the key; comments, order and
    everything else a file holds stay as they are."""
    by_field: dict[str, list[HandEdit]] = defaultdict(list)
    for edit in edits:
        by_field[edit.field].append(edit)
    texts = {}
    for name, field_edits in sorted(by_field.items()):
        existing = current.get(name)
        path = existing.path if existing else os.path.join(fields_dir, f"{name}{FIELD_SUFFIX}")
        base = baseline(name)
        values = {e.attribute: e.live for e in field_edits if e.live != base.get(e.attribute)}
        remove = {e.attribute for e in field_edits if e.live == base.get(e.attribute)}
        text = field_text(existing.text if existing else None, name, values, remove)
        if existing is None or text != existing.text:
            texts[path] = text
    return texts


def laid_in(edits: list[HandEdit], current: dict[str, FieldFile], repo: str) -> dict[str, str]:
    """{path: text} of each field file `edits` change, laid into the `current` files; refuses, writing nothing,
    when a resulting file would be invalid."""
    texts = _new_texts(edits, current, os.path.join(repo, FIELDS_DIR))
    checked = {path: check_file(path, f.text.encode("utf-8")) for f in current.values() if f.text
               for path in [f.path]}
    checked.update({path: check_file(path, text.encode("utf-8")) for path, text in texts.items()})
    problems = sorted(p for path in texts for p in checked[path].problems if p.is_error)
    problems += check_names(list(checked.values()))
    if problems:
        raise FieldsyncError("the document cannot be imported as it is; nothing written:\n"
                             + "\n".join(p.text() for p in problems)
                             + "\nSave it with `consul kv get`, fix those records, and use --from-file.")
    return texts


def _order_ties(repository: Any, repo: str, doc: Document | None, on_branch: bool) -> tuple[tuple[str, ...],
                                                                                           dict[str, str]]:
    """(how the document lists fields of equal order, {path: text} of fieldsync.yaml recording it), when
    fieldsync.yaml does not record it yet; ((), {}) otherwise."""
    ties = legacy.order_ties(doc)
    path = os.path.join(repo, CONFIG_FILE)
    if on_branch:
        data = git.read_at(repository, "HEAD", CONFIG_FILE)
    else:
        data = files.read_bytes(path, "config") if os.path.exists(path) else None
    if not ties or (data is not None and parse_config(path, data).order_ties == ties):
        return (), {}
    return ties, {path: with_order_ties((data or b"").decode("utf-8"), ties)}


def import_document(*, repo: str, from_file: str | None = None, key: str | None = None, kv: ConsulKV | None = None,
                    prefer: str | None = None, branch: str | None = None,
                    state_prefix: str = "fieldsync/") -> ImportResult:
    """Write the hand edits of a document read from `from_file`, or from `key` in Consul (with those the run record
    keeps pending, should the key have been wiped or refilled since), into fields/ (or commit them on a new
    `branch`). Nothing is written unless every resulting file is valid. Conflicts are left out unless `prefer` is
    "kv" (the hand edit wins) or "git" (git's value stays)."""
    last = None
    if from_file:
        doc, meta, sealed = document.read_live(files.read_bytes(from_file, "document"), from_file)
    elif kv is not None and key is not None:
        doc, meta, sealed = document.read_live(kv.read(key)[0], key)
        last = runlog.written(runlog.read(kv, key, state_prefix)[0])
        if doc is None and (last is None or not last.edits):
            raise FieldsyncError(f"{key} does not exist in Consul, and no hand edits are pending; nothing to import")
    else:
        raise UsageError("nothing to import from: give a document file or a Consul key")
    records = _records(doc or {})
    repository = git.open_repo(repo)
    if branch and repository.head_is_unborn:
        raise UsageError(f"{repo}: the repository has no commit yet to branch from; commit something first")
    head = "" if repository.head_is_unborn else str(git.resolve_commit(repository, "HEAD").id)
    current = read_current(repository, repo, branch is not None)
    git_now = {name: f.values for name, f in current.items()}
    seen = observe(repository, doc, meta, last, head, git_now, utc_now(), sealed)
    if not seen.base_known:
        raise FieldsyncError(f"{guards.rollback(seen.where)}; nothing imported")
    kept, conflicts = threeway.reconcile(seen.pending, git_now, seen.deleted)

    texts = laid_in(kept + (conflicts if prefer == "kv" else []), current, repo)
    ties, config = _order_ties(repository, repo, doc, on_branch=branch is not None)
    texts.update(config)
    known = {str(r["name"]) for r in records}
    result = ImportResult(
        written=texts, edits=tuple(kept), conflicts=tuple(conflicts), prefer=prefer,
        ignored={str(r["name"]): left_out for r in records if (left_out := ignored(r))},
        not_in_document=[os.path.basename(f.path) for name, f in sorted(current.items())
                         if doc is not None and name not in known],
        rewritten_by=legacy.rewrite_note(legacy.last_job(doc, meta), seen.job is not None),
        order_ties=ties)
    if branch:
        if texts:
            result.commit = git.commit_files_on_branch(
                repository, branch, {os.path.relpath(p, repo): t.encode("utf-8") for p, t in texts.items()},
                f"Import {len(kept)} hand edit(s) from {key or from_file}")
            result.branch = branch
        return result
    for path, text in texts.items():
        files.write_atomically(path, text)
    return result
