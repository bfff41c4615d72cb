"""What changes between two sets of field records, attribute by attribute."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..model import Diff, FieldChange
from . import schemas
from .effective import baseline, effective
from .merge import DERIVED, EXTRACTED


def diff_fields(before: Iterable[Mapping[str, Any]], after: Iterable[Mapping[str, Any]]) -> Diff:
    """Fields added, removed, and changed attribute by attribute, from the live records (`before`, in any shape
    the old system wrote) to complete records (`after`).

    A chosen attribute is compared by its effective value (null, absent and the default are one value; a flag the
    old UI reads as hidden when absent counts as false), so filling in what a record lacks is a change only when
    what the UI shows changes. What extraction derives is reported apart, as refreshed, never as a change. A key
    that is neither is a change to nothing: it is dropped.
    """
    attributes = schemas.chosen_attributes()
    old = {r["name"]: r for r in before}
    new = {r["name"]: r for r in after}
    changed, refreshed = [], []
    for name in sorted(old.keys() & new.keys()):
        a, b, base = old[name], new[name], baseline(name)
        chosen = {k: (effective(a, k, base), b.get(k)) for k in attributes}
        dropped = {k: (a[k], None) for k in a if k != "name" and k not in chosen and k not in DERIVED}
        changes = {k: v for k, v in sorted({**chosen, **dropped}.items()) if v[0] != v[1]}
        derived = {k: (a.get(k), b.get(k)) for k in EXTRACTED if a.get(k) != b.get(k)}
        if changes:
            changed.append(FieldChange(name, changes))
        if derived:
            refreshed.append(FieldChange(name, derived))
    return Diff(sorted(new.keys() - old.keys()), sorted(old.keys() - new.keys()), changed, refreshed)
