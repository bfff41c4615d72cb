"""What a person chose for a field: the attributes of a record that differ from what sync produces unset."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import schemas
from .merge import EXTRACTED, display_name


def baseline(name: str) -> dict[str, Any]:
    """What sync produces for a field's attributes when no file sets them."""
    return {**schemas.field_defaults(), "display_name": display_name(name)}


def choices(record: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(attributes that differ from the baseline, keys that are no field attribute and are ignored)."""
    attributes = schemas.field_properties()
    base = baseline(str(record["name"]))
    chosen = {k: v for k, v in record.items() if k in attributes and k != "name" and v != base.get(k)}
    ignored = sorted(k for k in record if k not in attributes and k != "name" and k not in EXTRACTED)
    return chosen, ignored
