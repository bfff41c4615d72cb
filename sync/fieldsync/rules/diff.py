"""What changes between two sets of field records, attribute by attribute."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..model import Diff, FieldChange


def diff_fields(before: Iterable[Mapping[str, Any]], after: Iterable[Mapping[str, Any]]) -> Diff:
    """Fields added, removed, and changed attribute by attribute. An attribute a `before` record lacks (documents
    of the old system omit some) is being filled in, not changed: nobody chose a value for it."""
    old = {r["name"]: r for r in before}
    new = {r["name"]: r for r in after}
    changed = []
    for name in sorted(old.keys() & new.keys()):
        a, b = old[name], new[name]
        attrs = {k: (a[k], b.get(k)) for k in sorted(a) if a[k] != b.get(k)}
        if attrs:
            changed.append(FieldChange(name, attrs))
    return Diff(sorted(new.keys() - old.keys()), sorted(old.keys() - new.keys()), changed)
