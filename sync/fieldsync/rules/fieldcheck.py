"""Checks of field files: one file at a time (cacheable), then the rules that span files."""

from __future__ import annotations

import posixpath
import re
from typing import Any

from ..model import FIELD_SUFFIX, MAX_FIELD_FILE_BYTES, FileResult, Problem
from . import schemas

_NAME_LINE = re.compile(r"^name\s*:", re.M)


PLACEHOLDER = ".gitkeep"  # keeps an empty fields/ in git
_EDITOR_BACKUP = re.compile(r"(~|\.sw[a-p]|\.bak|\.orig)$|^\.#|^#.*#$")


def is_ignored(path: str) -> bool:
    """The placeholder and editor backup or swap files: the only names in fields/ that are not field files."""
    base = posixpath.basename(path)
    return base == PLACEHOLDER or _EDITOR_BACKUP.search(base) is not None


def layout_problem(path: str, kind: str) -> Problem | None:
    """A problem for an entry of the fields directory that is not a plain `<name>.yaml` file."""
    base = posixpath.basename(path)
    if kind == "dir":
        return Problem(path, 1, 1, "subdirectories of the fields directory are not read; move the files up or out")
    if kind == "link":
        return Problem(path, 1, 1, "symbolic links are not allowed in the fields directory; commit the file itself")
    if base.endswith(".yml"):
        return Problem(path, 1, 1, f"field files end in .yaml; rename to {base[:-4]}{FIELD_SUFFIX}")
    if not base.endswith(FIELD_SUFFIX):
        return Problem(path, 1, 1, f"not a field file (<name>{FIELD_SUFFIX}); move it out of the fields directory")
    return None


def load_document(path: str, data: bytes, schema: str) -> tuple[dict[str, Any] | None, str, list[Problem]]:
    """Decode, parse strictly and schema-check one YAML mapping file: (document, text, located problems).

    The document is None when it could not be read as a mapping; problems then hold the one reason why.
    """
    from . import yamlload  # the parsers are imported when a file is parsed: a warm validate parses none

    def fail(message: str, line: int = 1, column: int = 1) -> tuple[None, str, list[Problem]]:
        return None, "", [Problem(path, line, column, message)]

    if len(data) > MAX_FIELD_FILE_BYTES:
        return fail(f"file is larger than {MAX_FIELD_FILE_BYTES:,} bytes, the limit for this kind of file; "
                    "is it the right file?")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        return fail(f"not valid UTF-8 (byte 0x{data[e.start]:02x}); save the file as UTF-8", line, column)
    try:
        doc = yamlload.load(text)
    except yamlload.YamlError as e:
        return fail(e.message, e.line, e.column)
    if doc is None:
        return fail("file is empty; it must be a mapping (key: value)")
    if not isinstance(doc, dict):
        return fail(f"top level must be a mapping (key: value), got a {type(doc).__name__}")
    validator = schemas.validator(schema)
    problems = []
    if not validator.is_valid(doc):
        for error in validator.errors(doc):
            for where, at_key, message in schemas.explain(error):
                problems.append(Problem(path, *yamlload.locate(text, where, at_key), message))
    return doc, text, problems


def check_file(path: str, data: bytes) -> FileResult:
    """Check one field file's bytes: size, encoding, YAML, shape, schema, regexes, name == file name."""
    import regress

    from . import yamlload

    doc, text, problems = load_document(path, data, "field")
    if doc is None:
        return FileResult(path, problems=tuple(problems))

    def add(where: tuple[Any, ...], message: str, severity: str = "error") -> None:
        problems.append(Problem(path, *yamlload.locate(text, where), message, severity))

    name = doc.get("name") if isinstance(doc.get("name"), str) else None
    stem = posixpath.basename(path)[: -len(FIELD_SUFFIX)]
    if name is not None and name != stem:
        add(("name",), f"name '{name}' must equal the file name '{stem}'; rename the file or fix the name")
    found_validation = doc.get("validation")
    validation: dict[str, Any] = found_validation if isinstance(found_validation, dict) else {}
    patterns = {
        ("validation_regex",): doc.get("validation_regex"),
        ("validation", "pattern"): validation.get("pattern"),
        ("validation", "regex"): validation.get("regex"),
    }
    for where, pattern in patterns.items():
        if not isinstance(pattern, str) or not pattern:
            continue
        label = ".".join(where)
        try:
            compiled = regress.Regex(pattern)  # no flags: what the UI's `new RegExp(pattern)` compiles
        except regress.RegressError as e:
            add(where, f"'{label}' is not a valid JavaScript regular expression ({e}); the UI compiles it with "
                       "new RegExp(pattern), so Python-only syntax such as (?P<name>...) or (?i) does not work")
            continue
        default = doc.get("default_value")
        if default is not None and compiled.find(str(default)) is None:
            add(("default_value",), f"default_value {default!r} does not match '{label}' {pattern!r}")
    if doc.get("field_type") == "select" and not doc.get("options"):
        add(("field_type",), "field_type select without options: the form offers nothing to choose; add 'options' "
            "(the old system's extractor made such fields; they still sync)", "warning")
    problems.sort()
    found = _NAME_LINE.search(text)
    name_line = text.count("\n", 0, found.start()) + 1 if found else 1
    result = FileResult(path, name, name_line, tuple(problems))
    return FileResult(path, name, name_line, tuple(problems), doc if result.valid else None)


def check_names(results: list[FileResult], established: list[FileResult] | None = None) -> list[Problem]:
    """Field names must be unique, ignoring case (they become label names and file names). Names of `established`
    files (the committed ones, when only some files are checked) come first; only `results` get the problems."""
    first: dict[str, FileResult] = {}
    problems = []
    checked = sorted(results, key=lambda r: r.path)
    for result in [*sorted(established or [], key=lambda r: r.path), *checked]:
        if result.name is None:
            continue
        other = first.setdefault(result.name.lower(), result)
        if other is not result and result in checked:
            problems.append(Problem(
                result.path, result.name_line, 1,
                f"field name '{result.name}' is already used by {other.path}:{other.name_line} "
                "(names are unique ignoring case); remove one of the two",
            ))
    return problems
