"""The merge: schema defaults, under extracted attributes, under YAML overrides."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..model import Discovery, Rule, ServerStatus

EXTRACTED = ("source_label", "regex", "replacement", "discovered_in")


DEFAULT_ORDER = 999


def sort_order(value: Any) -> float:
    """Where a record's `order` puts it: a number where it is one; anything else (null, text: the old UI's edit
    takes any value) where a record without one goes."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else DEFAULT_ORDER


def display_name(name: str) -> str:
    """'cost_center' -> 'Cost Center'."""
    return " ".join(part.capitalize() for part in name.split("_") if part) or name


def discover(statuses: Iterable[ServerStatus], live_fields: Iterable[Mapping[str, Any]] = ()) -> dict[str, Discovery]:
    """Fields seen by the servers that answered (first server wins), plus fields of the live document that only
    servers which failed this run had: those are carried over, never dropped because a server was down."""
    statuses = list(statuses)
    failed = {s.name for s in statuses if not s.success}
    found: dict[str, Discovery] = {}
    for status in statuses:
        for rule in status.rules:
            known = found.get(rule.name)
            found[rule.name] = Discovery(known.rule if known else rule,
                                         (known.servers if known else ()) + (status.name,))
    for record in live_fields:
        carried = tuple(s for s in record.get("discovered_in") or () if s in failed)
        if not carried:
            continue
        name = record["name"]
        known = found.get(name)
        if known is None:
            rule = Rule(name, record.get("source_label") or "", record.get("regex") or "",
                        record.get("replacement") or "")
            found[name] = Discovery(rule, carried)
        else:
            found[name] = Discovery(known.rule, known.servers + tuple(s for s in carried if s not in known.servers))
    return found


def merge(overrides: Mapping[str, Mapping[str, Any]], discovered: Mapping[str, Discovery],
          defaults: Mapping[str, Any], attribute_order: Iterable[str],
          ties: Sequence[str] = ()) -> list[dict[str, Any]]:
    """One record per field named in YAML or discovered, sorted by `order`, then as `ties` lists them, then by name.
    YAML always wins."""
    keys = [*attribute_order, *EXTRACTED]  # YAML keys are schema attributes: validated before the merge
    records = []
    for name in set(overrides) | set(discovered):
        found = discovered.get(name)
        values: dict[str, Any] = {
            **copy.deepcopy(dict(defaults)),
            "name": name,
            "display_name": display_name(name),
            "source_label": found.rule.source_label if found else "",
            "regex": found.rule.regex if found else None,
            "replacement": found.rule.replacement if found else None,
            "discovered_in": list(found.servers) if found else [],
            **copy.deepcopy(dict(overrides.get(name, {}))),
        }
        records.append({k: values[k] for k in keys if k in values})
    rank = {name: n for n, name in enumerate(ties)}
    records.sort(key=lambda r: (sort_order(r["order"]), rank.get(r["name"], len(rank)), r["name"]))
    return records
