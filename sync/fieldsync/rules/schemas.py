"""The JSON Schemas in schema/: loading, defaults, and a fast validator with readable errors."""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
# Installed wheels carry the schemas inside the package; a source checkout has them at the top level.
SCHEMA_DIR = next(p for p in (_HERE.parent / "schema", _HERE.parents[2] / "schema") if p.is_dir())

# Keywords that mean the same in draft-07 (what fastjsonschema implements) and draft 2020-12. `format` is an
# annotation in both as used here: neither validator is given a format checker.
_SHARED_KEYWORDS = frozenset({
    "$schema", "$id", "title", "description", "default", "type", "enum", "const", "properties", "required",
    "additionalProperties", "pattern", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "multipleOf", "items", "minItems", "maxItems", "uniqueItems", "oneOf", "anyOf", "allOf",
    "not", "if", "then", "else", "format", "$defs", "$ref",
})


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


def chosen_attributes() -> list[str]:
    """The attributes people choose for a field: every property but its name."""
    return [k for k in field_properties() if k != "name"]


def field_defaults() -> dict[str, Any]:
    """Attribute defaults of a field record, from the schema's `default` keywords (a copy: callers may change it;
    the values are the schema's own, to be deep-copied before they are changed)."""
    return dict(_defaults())


@cache
def _defaults() -> dict[str, Any]:
    return {k: v["default"] for k, v in field_properties().items() if "default" in v}


_VALUES = frozenset({"default", "enum", "const", "examples"})  # keywords whose values are data, not schemas
_NAMES = frozenset({"properties", "$defs"})  # keywords whose keys are names, not keywords


def _keywords(schema: Any, under_names: bool = False) -> Iterator[str]:
    """Every keyword a schema uses. A local `$ref` with no sibling keyword means the same in draft-07 and 2020-12
    (only its siblings differ: ignored in one, applied in the other), so it counts as "$ref" only then."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if not under_names:
                yield key if key != "$ref" or len(schema) == 1 else "$ref with siblings"
            if under_names or key not in _VALUES:
                yield from _keywords(value, key in _NAMES and not under_names)
    elif isinstance(schema, list):
        for item in schema:
            yield from _keywords(item)


class Validator:
    """Decides validity fast (compiled) and explains invalid documents in detail (jsonschema)."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self._fast = None
        self._full: Any = None
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
        if self._full is None:  # imported on first need: most runs meet no invalid document
            import jsonschema

            self._full = jsonschema.Draft202012Validator(self.schema)
        return self._full.iter_errors(doc)


@cache
def validator(name: str) -> Validator:
    return Validator(load(name))


def hint(word: str, choices: list[str]) -> str:
    """' (did you mean X?)' for a near miss, else ''."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _got(value: Any) -> str:
    return f"got {type(value).__name__} {value!r}"


def _note(schema: dict[str, Any]) -> str:
    return f" ({schema['description']})" if "description" in schema else ""


def explain(error: Any) -> list[tuple[tuple[Any, ...], bool, str]]:
    """Turn a jsonschema error into (path, at_key, message) items people can act on."""
    path = tuple(error.absolute_path)
    where = ".".join(str(p) for p in path)
    label = f"'{where}'" if where else "the document"
    kind, value, instance = error.validator, error.validator_value, error.instance
    if kind == "additionalProperties":
        known = error.schema.get("properties", {})
        scope = f" in '{where}'" if where else ""
        return [(path + (k,), True, f"unknown key '{k}'{scope}{hint(str(k), sorted(known))}")
                for k in instance if k not in known]
    if kind == "required":
        return [(path, False, f"missing required key '{error.message.split(chr(39))[1]}'")]
    if kind == "pattern":
        return [(path, False, f"{label} {instance!r} does not match {value}{_note(error.schema)}")]
    if kind == "enum":
        choices = [str(v) for v in value]
        return [(path, False, f"{label} must be one of: {', '.join(choices)}; "
                              f"got {instance!r}{hint(str(instance), choices)}")]
    if kind == "type":
        expected = value if isinstance(value, str) else " or ".join(value)
        return [(path, False, f"{label} must be of type {expected}; {_got(instance)}")]
    if kind == "oneOf" and all(set(alt) == {"required"} for alt in value):
        keys = " or ".join(f"'{k}'" for alt in value for k in alt["required"])
        return [(path, False, f"{label} needs exactly one of {keys}")]
    if kind in ("oneOf", "anyOf") and error.context:
        from jsonschema.exceptions import best_match

        relevant = [e for e in error.context if e.validator != "type"]
        if relevant:  # the instance had a right type but broke a rule of that alternative
            return explain(best_match(relevant))
        types = [t for e in error.context for t in ([e.validator_value] if isinstance(e.validator_value, str)
                                                    else e.validator_value)]
        return [(path, False, f"{label} must be of type {' or '.join(types)}; {_got(instance)}")]
    return [(path, False, f"{label}: {error.message}")]
