"""The text of field files: new ones in schema order, existing ones edited in place (comments and key order kept),
and stubs for fields Prometheus has that no file describes."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Set
from typing import Any

from ..model import Discovery
from . import schemas
from .merge import display_name

HEADER = "# yaml-language-server: $schema=../schema/field.schema.json\n"


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML()  # round-trip: keeps comments, key order and quoting of what it does not touch
    yaml.default_flow_style = None
    yaml.width = 120
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _attribute_order() -> list[str]:
    return ["name", *schemas.field_properties()]


def field_text(existing: str | None, name: str, values: Mapping[str, Any], remove: Set[str] = frozenset()) -> str:
    """The text of fields/<name>.yaml after setting `values` and deleting `remove` (existing: current text)."""
    from ruamel.yaml.comments import CommentedMap

    yaml = _yaml()
    data = yaml.load(existing) if existing else None
    if data is None:
        data = CommentedMap()
    order = _attribute_order()
    if "name" not in data:
        data.insert(0, "name", name)
    for key in remove:
        data.pop(key, None)
    for key, value in sorted(values.items(), key=lambda kv: order.index(kv[0])):
        if key in data:
            data[key] = value
        else:  # after the keys that precede it in schema order
            rank = order.index(key)
            data.insert(sum(1 for k in data if k in order and order.index(k) < rank), key, value)
    if existing is None:
        data.fa.set_block_style()  # one attribute a line; short lists and mappings inside stay inline
    out = io.StringIO()
    yaml.dump(data, out)
    return (HEADER if existing is None else "") + out.getvalue()


def stub_text(name: str, found: Discovery) -> str:
    """A new field file that sets only the name, with every default shown as a comment to uncomment."""
    rule = found.rule
    lines = [HEADER.rstrip("\n"),
             f"# Discovered in {', '.join(found.servers)}: source label {rule.source_label or '(none)'}, "
             f"regex {rule.regex}, replacement {rule.replacement}.",
             "# Uncomment and change what should differ from the defaults shown.",
             f"name: {name}"]
    for key, spec in schemas.field_properties().items():
        if key == "name":
            continue
        value = display_name(name) if key == "display_name" else spec.get("default")
        choices = f"  # one of: {', '.join(spec['enum'])}" if "enum" in spec else ""
        lines.append(f"# {key}: {json.dumps(value, ensure_ascii=False)}{choices}")
    return "\n".join(lines) + "\n"
