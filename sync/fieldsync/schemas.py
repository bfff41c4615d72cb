"""The JSON Schemas in schema/: loading, defaults, and a fast validator with readable errors."""

from __future__ import annotations

import difflib
import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any, Iterator

_HERE = Path(__file__).resolve().parent
# Installed wheels carry the schemas inside the package; a source checkout has them at the top level.
SCHEMA_DIR = next(p for p in (_HERE / "schema", _HERE.parents[1] / "schema") if p.is_dir())

# Keywords that mean the same in draft-07 (what fastjsonschema implements) and draft 2020-12.
_SHARED_KEYWORDS = frozenset(
    "$schema $id title description default type enum const properties required additionalProperties "
    "pattern minLength maxLength minimum maximum exclusiveMinimum exclusiveMaximum multipleOf "
    "items minItems maxItems uniqueItems oneOf anyOf allOf not if then else".split()
)


@cache
def load(name: str) -> dict[str, Any]:
    """A schema by file stem: 'field', 'config', 'document'."""
    return json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))


@cache
def digest() -> str:
    """Hash of every schema file: part of the validation cache key."""
    h = hashlib.sha256()
    for p in sorted(SCHEMA_DIR.glob("*.schema.json")):
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def field_properties() -> dict[str, Any]:
    return load("field")["properties"]


def field_defaults() -> dict[str, Any]:
    """Attribute defaults of a field record, from the schema's `default` keywords."""
    return {k: v["default"] for k, v in field_properties().items() if "default" in v}


def _keywords(schema: Any, under_properties: bool = False) -> Iterator[str]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            if not under_properties:
                yield key
            yield from _keywords(value, key == "properties" and not under_properties)
    elif isinstance(schema, list):
        for item in schema:
            yield from _keywords(item)


class Validator:
    """Decides validity fast (compiled) and explains invalid documents in detail (jsonschema)."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self._fast = None
        if set(_keywords(schema)) <= _SHARED_KEYWORDS:
            import fastjsonschema

            self._fast = fastjsonschema.compile(schema, use_default=False, use_formats=False)

    def is_valid(self, doc: Any) -> bool:
        if self._fast is None:
            return not any(True for _ in self.errors(doc))
        try:
            self._fast(doc)
        except Exception:  # JsonSchemaValueException, or a type the compiled code did not expect
            return False
        return True

    def errors(self, doc: Any) -> Iterator[Any]:
        return self._detailed().iter_errors(doc)

    @cache
    def _detailed(self) -> Any:
        import jsonschema

        return jsonschema.Draft202012Validator(self.schema)


@cache
def validator(name: str) -> Validator:
    return Validator(load(name))


def _names(items: list[Any]) -> str:
    return ", ".join(repr(i) if not isinstance(i, str) else i for i in items)


def hint(word: str, choices: list[str]) -> str:
    """' (did you mean X?)' for a near miss, else ''."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def explain(error: Any) -> list[tuple[tuple[Any, ...], bool, str]]:
    """Turn a jsonschema error into (path, at_key, message) items people can act on."""
    path = tuple(error.absolute_path)
    where = ".".join(str(p) for p in path)
    label = f"'{where}'" if where else "the document"
    kind = error.validator
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in error.schema.get("properties", {})]
        scope = f" in '{where}'" if where else ""
        return [
            (path + (k,), True, f"unknown key '{k}'{scope}{hint(str(k), allowed)}; allowed keys are listed in the schema")
            for k in extra
        ]
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        if "then" in error.schema_path:
            return [(path + ("field_type",), False, f"field_type select needs a non-empty '{missing}' list")]
        return [(path, False, f"missing required key '{missing}'")]
    if kind == "minItems" and "then" in error.schema_path:
        return [(path, False, "field_type select needs at least one entry in 'options'")]
    if kind == "pattern":
        return [(path, False, f"{label} {error.instance!r} does not match {error.validator_value}"
                              + (f" ({error.schema['description']})" if "description" in error.schema else ""))]
    if kind == "enum":
        return [(path, False, f"{label} must be one of: {_names(error.validator_value)}; "
                              f"got {error.instance!r}{hint(str(error.instance), [str(v) for v in error.validator_value])}")]
    if kind == "type":
        expected = error.validator_value if isinstance(error.validator_value, str) else " or ".join(error.validator_value)
        return [(path, False, f"{label} must be of type {expected}; got {type(error.instance).__name__} {error.instance!r}")]
    if kind in ("oneOf", "anyOf") and error.context:
        from jsonschema.exceptions import best_match

        relevant = [e for e in error.context if e.validator != "type"]
        if relevant:  # the instance had a right type but broke a rule of that alternative
            return explain(best_match(relevant))
        types = [t for e in error.context for t in ([e.validator_value] if isinstance(e.validator_value, str)
                                                    else e.validator_value)]
        return [(path, False, f"{label} must be of type {' or '.join(types)}; "
                              f"got {type(error.instance).__name__} {error.instance!r}")]
    return [(path, False, f"{label}: {error.message}")]
