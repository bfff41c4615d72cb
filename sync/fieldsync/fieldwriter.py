"""Writing field files: new ones in schema order, existing ones edited in place (comments and key order kept)."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Mapping
from typing import Any

from . import schemas

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


def field_text(existing: str | None, name: str, values: Mapping[str, Any], remove: set[str] = frozenset()) -> str:
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
    data.fa.set_block_style()  # one attribute a line; short lists and mappings inside stay inline
    out = io.StringIO()
    yaml.dump(data, out)
    return (HEADER if existing is None else "") + out.getvalue()


def write_atomically(path: str, text: str) -> None:
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".fieldsync-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
