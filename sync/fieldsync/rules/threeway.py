"""Three-way: what people changed by hand in the live document, against what git changed since it was written.

The *base* is what the commit the live document names produced for the attributes people choose: that commit's
YAML over the defaults (extraction does not enter, so the base can always be rebuilt from git). A document with no
fieldsync provenance has the defaults as its base. A *hand edit* is a chosen attribute whose live value (read as
the old UI reads it) differs from the base. A hand edit is a *conflict* when git also changed the attribute since
the base, to another value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from ..model import HandEdit, Record
from . import schemas
from .effective import baseline, effective

Overrides = Mapping[str, Mapping[str, Any]]  # field name -> attributes its YAML sets
_DELETED = "(field deleted in git)"


def value_in(overrides: Overrides, name: str, attribute: str) -> Any:
    """What a set of field files produces for one attribute of one field."""
    return overrides.get(name, {}).get(attribute, baseline(name).get(attribute))


def hand_edits(live: Iterable[Record], base: Overrides) -> list[HandEdit]:
    """Every chosen attribute of the live records whose value differs from the base."""
    edits = []
    attributes = schemas.chosen_attributes()
    for record in live:
        name = str(record["name"])
        default = baseline(name)
        produced = {**default, **base.get(name, {})}  # what the base's files produce for this field
        for attribute in attributes:
            now = effective(record, attribute, default)
            if now != produced.get(attribute):
                edits.append(HandEdit(name, attribute, produced.get(attribute), now))
    return edits


def git_value(overrides: Overrides, base: Overrides, name: str, attribute: str) -> Any:
    """What git holds now for an attribute; a field whose file git deleted since the base reads as deleted."""
    if name in base and name not in overrides:
        return _DELETED
    return value_in(overrides, name, attribute)


def reconcile(edits: Iterable[HandEdit], base: Overrides, git: Overrides) -> tuple[list[HandEdit], list[HandEdit]]:
    """(hand edits git did not change, conflicts), each with git's value. A hand edit git made too, to the same
    value, is neither."""
    kept, conflicts = [], []
    for edit in edits:
        theirs = git_value(git, base, edit.field, edit.attribute)
        if theirs == edit.base:
            kept.append(replace(edit, git=theirs))
        elif theirs != edit.live:
            conflicts.append(replace(edit, git=theirs))
    return kept, conflicts


def with_edits(overrides: Overrides, edits: Iterable[HandEdit]) -> dict[str, dict[str, Any]]:
    """The field files' values with hand edits laid over them, as if the files held them."""
    result = {name: dict(values) for name, values in overrides.items()}
    for edit in edits:
        result.setdefault(edit.field, {"name": edit.field})[edit.attribute] = edit.live
    return result
