"""What a record's attribute means to the UI that reads it: null, absent and the default are one value.

The old system's records may lack attributes or hold null for them. Its UI shows a field in tables, filters and
registration only when `enabled`, `show_in_filter` and `available_for_registration` are `true` (a missing flag hides
it), shows it on a page unless `show_in_<page>` is false (a missing flag shows it), and reads null as "not set".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import schemas
from .merge import DERIVED, display_name

HIDDEN_UNLESS_TRUE = frozenset({"enabled", "show_in_filter", "available_for_registration"})
NULL_IS_UNSET = frozenset({"validation_regex", "validation", "options", "default_value", "placeholder", "description"})


def baseline(name: str) -> dict[str, Any]:
    """What sync produces for a field's attributes when no file sets them."""
    return {**schemas.field_defaults(), "display_name": display_name(name)}


def baseline_of(name: str, attribute: str) -> Any:
    """`baseline(name)[attribute]` (None for an attribute without default), without building the rest."""
    return display_name(name) if attribute == "display_name" else schemas.field_defaults().get(attribute)


def effective(record: Mapping[str, Any], attribute: str, base: Mapping[str, Any]) -> Any:
    """The value the UI acts on for `attribute` of `record`; `base` is the field's baseline."""
    if attribute in HIDDEN_UNLESS_TRUE:
        return record.get(attribute) is True
    if attribute not in record:
        return True if attribute.startswith("show_in_") else base.get(attribute)
    value = record[attribute]
    return base.get(attribute) if value is None and attribute in NULL_IS_UNSET else value


def chosen(record: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes of a record whose effective value differs from what sync produces unset."""
    base = baseline(str(record["name"]))
    values = {k: effective(record, k, base) for k in schemas.chosen_attributes()}
    return {k: v for k, v in values.items() if v != base.get(k)}


def ignored(record: Mapping[str, Any]) -> list[str]:
    """Keys of a record that are no field attribute and nothing extraction derives: import leaves them out."""
    attributes = schemas.field_properties()
    return sorted(k for k in record if k not in attributes and k not in DERIVED)  # "name" is an attribute
