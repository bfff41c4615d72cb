"""import: turn a live fields document (the old system's included) into field files holding what people chose."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..adapters import files
from ..adapters.consul import ConsulKV
from ..errors import FieldsyncError, UsageError
from ..model import FIELD_SUFFIX, FIELDS_DIR, Document, ImportResult
from ..rules import document, schemas, yamlload
from ..rules.effective import baseline, chosen, effective, ignored
from ..rules.fieldcheck import check_file, check_names
from ..rules.fieldtext import field_text


def _new_text(path: str, existing: str | None, record: Mapping[str, Any]) -> str:
    """A new file holds the attributes that differ from the baseline. An existing file keeps its comments, order and
    the values that agree with the document; it changes only where the document differs from it."""
    name = str(record["name"])
    if existing is None:
        return field_text(None, name, chosen(record))
    try:
        current = yamlload.load(existing) or {}
    except yamlload.YamlError as e:
        raise FieldsyncError(f"{path}:{e.line}:{e.column}: {e.message}; fix it before importing") from None
    base = baseline(name)
    wanted = {k: effective(record, k, base) for k in schemas.field_properties() if k != "name"}
    updates = {k: v for k, v in wanted.items() if current.get(k, base.get(k)) != v}
    if not updates:
        return existing
    remove = {k for k, v in updates.items() if v == base.get(k)}
    return field_text(existing, name, {k: v for k, v in updates.items() if k not in remove}, remove)


def plan_import(doc: Document, fields_dir: str) -> ImportResult:
    """The field files that make sync reproduce `doc`'s choices; validated, not yet written."""
    result = ImportResult()
    records = [r for r in doc.get("fields") or [] if isinstance(r, dict)]
    names = [str(r.get("name", "")) for r in records]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates or "" in names:
        raise FieldsyncError(f"the document has records without a name or with the same name: {duplicates}")
    checked = []
    for record in records:
        name = str(record["name"])
        path = os.path.join(fields_dir, f"{name}{FIELD_SUFFIX}")
        left_out = ignored(record)
        if left_out:
            result.ignored[name] = left_out
        existing = files.read_text_if_exists(path)
        text = _new_text(path, existing, record)
        checked.append(check_file(path, text.encode("utf-8")))
        if text == existing:
            result.unchanged.append(path)
        else:
            result.written[path] = text
    problems = sorted(p for r in checked for p in r.problems if p.is_error) + check_names(checked)
    if problems:
        raise FieldsyncError("the document cannot be imported as it is; nothing written:\n"
                             + "\n".join(p.text() for p in problems)
                             + "\nSave it with `consul kv get`, fix those records, and use --from-file.")
    result.not_in_document = [f"{n}{FIELD_SUFFIX}" for n in files.field_names(fields_dir) if n not in set(names)]
    return result


def import_document(*, repo: str, from_file: str | None = None, key: str | None = None,
                    kv: ConsulKV | None = None) -> ImportResult:
    """Write fields/<name>.yaml for every field of a document read from `from_file`, or from `key` in Consul.
    Nothing is written unless every file would be valid."""
    if from_file:
        doc = document.decode(files.read_bytes(from_file, "document"), from_file)
    elif kv is not None and key is not None:
        doc = document.decode(kv.read(key)[0], key)
        if doc is None:
            raise FieldsyncError(f"{key} does not exist in Consul; nothing to import")
    else:
        raise UsageError("nothing to import from: give a document file or a Consul key")
    assert doc is not None
    result = plan_import(doc, os.path.join(repo, FIELDS_DIR))
    for path, text in result.written.items():
        files.write_atomically(path, text)
    return result
