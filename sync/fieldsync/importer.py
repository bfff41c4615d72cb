"""import: turn a live fields document (the old system's included) into field files holding what people chose."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import schemas, yamlload
from .errors import FieldsyncError
from .fieldcheck import SUFFIX, check_file, check_names
from .fieldwriter import field_text, write_atomically
from .merge import EXTRACTED, display_name

# Keys of the KV document's records that no field file holds.
_NOT_YAML = frozenset(EXTRACTED)


def baseline(name: str) -> dict[str, Any]:
    """What sync produces for a field's attributes when no file sets them."""
    return {**schemas.field_defaults(), "display_name": display_name(name)}


def choices(record: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(attributes that differ from the baseline, keys that are no field attribute and are ignored)."""
    attributes = schemas.field_properties()
    base = baseline(str(record["name"]))
    chosen = {k: v for k, v in record.items() if k in attributes and k != "name" and v != base.get(k)}
    ignored = sorted(k for k in record if k not in attributes and k != "name" and k not in _NOT_YAML)
    return chosen, ignored


@dataclass
class ImportResult:
    written: dict[str, str] = field(default_factory=dict)  # path -> new text
    unchanged: list[str] = field(default_factory=list)
    ignored: dict[str, list[str]] = field(default_factory=dict)  # field -> keys ignored
    not_in_document: list[str] = field(default_factory=list)


def plan_import(doc: Mapping[str, Any], fields_dir: str) -> ImportResult:
    """The field files that make sync reproduce `doc`'s choices; validated, not yet written.

    A new file holds the attributes that differ from the baseline. An existing file keeps its comments, order
    and the values that agree with the document; it changes only where the document differs from it.
    """
    result = ImportResult()
    records = [r for r in doc.get("fields") or [] if isinstance(r, dict)]
    names = [str(r.get("name", "")) for r in records]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates or "" in names:
        raise FieldsyncError(f"the document has records without a name or with the same name: {duplicates}")
    checked = []
    for record in records:
        name = str(record["name"])
        path = os.path.join(fields_dir, f"{name}{SUFFIX}")
        chosen, ignored = choices(record)
        if ignored:
            result.ignored[name] = ignored
        existing = Path(path).read_text(encoding="utf-8") if os.path.exists(path) else None
        if existing is None:
            text = field_text(None, name, chosen)
        else:
            try:
                current = yamlload.load(existing) or {}
            except yamlload.YamlError as e:
                raise FieldsyncError(f"{path}:{e.line}:{e.column}: {e.message}; fix it before importing") from None
            base = baseline(name)
            updates = {k: record[k] for k in schemas.field_properties() if k in record and k != "name"
                       and current.get(k, base.get(k)) != record[k]}
            remove = {k for k, v in updates.items() if v == base.get(k)}
            text = field_text(existing, name, {k: v for k, v in updates.items() if k not in remove}, remove) \
                if updates else existing
        outcome = check_file(path, text.encode("utf-8"))
        checked.append(outcome)
        if text == existing:
            result.unchanged.append(path)
        else:
            result.written[path] = text
    problems = sorted(p for r in checked for p in r.problems) + check_names(checked)
    if problems:
        raise FieldsyncError("the document cannot be imported as it is; nothing written:\n"
                             + "\n".join(p.text() for p in problems)
                             + "\nSave it with `consul kv get`, fix those records, and use --from-file.")
    if os.path.isdir(fields_dir):
        known = set(names)
        result.not_in_document = sorted(f for f in os.listdir(fields_dir)
                                        if f.endswith(SUFFIX) and f[: -len(SUFFIX)] not in known)
    return result


def apply_import(result: ImportResult) -> None:
    for path, text in result.written.items():
        write_atomically(path, text)
