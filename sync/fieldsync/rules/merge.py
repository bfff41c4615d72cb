"""The merge: schema defaults, under extracted attributes, under YAML overrides."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..model import Discovery, Rule, ServerStatus

EXTRACTED = ("source_label", "regex", "replacement")
# What no person sets: the extracted attributes, and "discovered in", which records of older documents held and the
# old system's readers recompute from server_status[].
DERIVED = (*EXTRACTED, "discovered_in")


DEFAULT_ORDER = 999


def sort_order(value: Any) -> float:
    """Where a record's `order` puts it: a number where it is one; anything else (null, text: the old UI's edit
    takes any value) where a record without one goes."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else DEFAULT_ORDER


def display_name(name: str) -> str:
    """'cost_center' -> 'Cost Center'."""
    return " ".join(part.capitalize() for part in name.split("_") if part) or name


def discover(statuses: Iterable[ServerStatus], carried: Mapping[str, Iterable[str]] = {},
             live_fields: Iterable[Mapping[str, Any]] = ()) -> dict[str, Discovery]:
    """Fields seen by the servers that answered (first server wins), plus the fields that servers which failed this
    run listed at their last read (`carried`: server -> field names), with the rule of their live record: a field is
    never dropped because a server was down."""
    found: dict[str, Discovery] = {}
    for status in statuses:
        for rule in status.rules:
            known = found.get(rule.name)
            found[rule.name] = Discovery(known.rule if known else rule,
                                         (known.servers if known else ()) + (status.name,))
    records = {record.get("name"): record for record in live_fields}
    for server, names in carried.items():
        for name in names:
            known, record = found.get(name), records.get(name)
            if known is not None:
                found[name] = Discovery(known.rule, known.servers + (server,))
            elif record is not None:
                found[name] = Discovery(Rule(name, record.get("source_label") or "", record.get("regex") or "",
                                             record.get("replacement") or ""), (server,))
    return found


def _copy(value: Any) -> Any:
    """A copy of a JSON value that shares nothing mutable with it (records never share a list or a mapping with
    the defaults, the field files or each other)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def merge(overrides: Mapping[str, Mapping[str, Any]], discovered: Mapping[str, Discovery],
          defaults: Mapping[str, Any], attribute_order: Iterable[str],
          ties: Sequence[str] = ()) -> list[dict[str, Any]]:
    """One record per field named in YAML or discovered, sorted by `order`, then as `ties` lists them, then by name.
    YAML always wins."""
    keys = [*attribute_order, *EXTRACTED]  # YAML keys are schema attributes: validated before the merge
    records = []
    for name in set(overrides) | set(discovered):
        found, chosen = discovered.get(name), overrides.get(name, {})
        derived: dict[str, Any] = {"name": name, "display_name": display_name(name),
                                   "source_label": found.rule.source_label if found else "",
                                   "regex": found.rule.regex if found else None,
                                   "replacement": found.rule.replacement if found else None}
        values = {**defaults, **derived, **chosen}
        record = {key: values[key] for key in keys if key in values}
        for key, value in record.items():
            if isinstance(value, (dict, list)):
                record[key] = _copy(value)
        records.append(record)
    rank = {name: n for n, name in enumerate(ties)}
    records.sort(key=lambda r: (sort_order(r["order"]), rank.get(r["name"], len(rank)), r["name"]))
    return records
