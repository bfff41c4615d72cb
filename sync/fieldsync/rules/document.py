"""The KV document: building it, its bytes, reading old and new shapes, and comparing content."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from ..errors import Refused
from ..model import (
    DEFAULT_REGEX,
    DEFAULT_REPLACEMENT,
    Document,
    DocumentSize,
    GitInfo,
    HandEdit,
    Rule,
    ServerSpec,
    ServerStatus,
)
from . import schemas
from .merge import discover, merge

VERSION = "2.0"
MAX_LIVE_BYTES = 16 * 1024 * 1024  # far over Consul's default value limit: anything larger is not our document
MAX_DEPTH = 64  # a fields document nests a few levels; deeper is not one
SOURCE = "fieldsync"
CONSUL_VALUE_LIMIT = 512 * 1024
ENTRY_KEYS = ("name", "hostname", "port", "success", "from_cache", "files_count", "error", "duration_ms",
              "fields_count", "external_labels", "fields")


def entry_fields(entry: Mapping[str, Any]) -> list[str]:
    """The field names a server_status[] entry lists: strings, or objects with a name (its reader takes both)."""
    names = []
    for item in entry.get("fields") or []:
        name = item.get("name") if isinstance(item, dict) else item
        if isinstance(name, str):
            names.append(name)
    return names


def entry(status: ServerStatus) -> dict[str, Any]:
    """A server's extraction_status.server_status[] entry: the keys the old system's readers use (CONTRACT.md), its
    fields listed by name (they recompute "discovered in" from these), and fieldsync's name for the server. The
    fields' rules are in the records, once; the URL is in fieldsync.yaml."""
    return {"name": status.name, "hostname": status.hostname or status.name, "port": status.port,
            "success": status.success, "from_cache": False, "files_count": status.files_count, "error": status.error,
            "duration_ms": status.duration_ms, "fields_count": len(status.rules),
            "external_labels": status.external_labels, "fields": [rule.name for rule in status.rules]}


def last_reads(statuses: Sequence[ServerStatus], live: Document | None) -> dict[str, dict[str, Any]]:
    """The entry of each server that failed this run as its last successful read left it (in the shape `entry`
    gives, whatever shape the live document has); a server that never answered has none."""
    failed = {s.name for s in statuses if not s.success}
    previous = ((live or {}).get("extraction_status") or {}).get("server_status") or []
    return {e["name"]: {**{k: v for k, v in e.items() if k in ENTRY_KEYS}, "fields": entry_fields(e)}
            for e in previous if isinstance(e, dict) and e.get("success") is True and e.get("name") in failed}


def build(records: list[dict[str, Any]], statuses: list[ServerStatus], git: GitInfo, now: str,
          carried: Mapping[str, dict[str, Any]], edits: Sequence[HandEdit] = ()) -> dict[str, Any]:
    """The document. extraction_status.server_status[] holds data from successful reads only: a server that failed
    this run keeps the entry of its last successful read (`carried`). Health (errors, durations of failed runs)
    goes to the run record, so the document changes only when what readers use does."""
    entries = [entry(s) if s.success else carried[s.name] for s in statuses if s.success or s.name in carried]
    return {
        "version": VERSION,
        "last_updated": now,
        "source": SOURCE,
        "total_fields": len(records),
        "fields": records,
        "extraction_status": {
            "total_servers": len(entries),
            "successful_servers": len(entries),
            "extraction_complete": len(entries) == len(statuses),
            "extracted_at": now,
            "server_status": entries,
        },
        "git": git.to_json(),
        "hand_edits": [{"field": e.field, "attribute": e.attribute, "value": e.live, "base": e.base}
                       for e in sorted(edits, key=lambda e: (e.field, e.attribute))],
    }


def build_document(overrides: Mapping[str, Mapping[str, Any]], statuses: list[ServerStatus], live: Document | None,
                   git: GitInfo, now: str, edits: Sequence[HandEdit] = (), ties: Sequence[str] = ()) -> Document:
    """The sealed document for these field files with the hand `edits` laid over them (and recorded in it, with
    their bases, as what it holds over its commit), and these extraction results; what a server that failed this
    run had at its last read is carried over from `live`; records of equal `order` are listed as `ties` says."""
    carried = last_reads(statuses, live)
    discovered = discover(statuses, {name: e["fields"] for name, e in carried.items()},
                          (live or {}).get("fields") or [])
    laid = {name: dict(values) for name, values in overrides.items()}
    for edit in edits:
        laid.setdefault(edit.field, {"name": edit.field})[edit.attribute] = edit.live
    records = merge(laid, discovered, schemas.field_defaults(), ["name", *schemas.field_properties()], ties)
    return seal(build(records, statuses, git, now, carried, edits))


def estimate(overrides: Mapping[str, Mapping[str, Any]], servers: Sequence[ServerSpec]) -> DocumentSize:
    """The size of the document these field files make, as if every server had every field (extraction may add
    fields that no file names)."""
    statuses = [ServerStatus(s.name, "", True, rules=tuple(Rule(name, f"__meta_consul_service_metadata_{name}",
                                                                DEFAULT_REGEX, DEFAULT_REPLACEMENT)
                                                           for name in overrides), hostname=s.hostname)
                for s in servers]
    doc = build_document(overrides, statuses, None, GitInfo("0" * 40, "", ""), "")
    return DocumentSize(len(encode(doc)), len(doc["fields"]), len(servers), estimate=True)


def held_edits(doc: Document | None) -> tuple[HandEdit, ...]:
    """The hand edits a document fieldsync wrote says it holds over its commit's field files; none for a document
    that says none, or says it in another shape than fieldsync writes."""
    held = (doc or {}).get("hand_edits")
    if not isinstance(held, list) or not all(isinstance(e, dict) and isinstance(e.get("field"), str)
                                             and isinstance(e.get("attribute"), str) for e in held):
        return ()
    return tuple(HandEdit(e["field"], e["attribute"], e.get("base"), e.get("value")) for e in held)


def encode(doc: dict[str, Any]) -> bytes:
    """Compact, deterministic UTF-8 JSON: same document, same bytes."""
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _depth(value: Any) -> int:
    """How deep containers nest in a parsed JSON value, counted without recursion."""
    if not isinstance(value, (dict, list)):
        return 0
    deepest, stack = 1, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = [c for c in (item.values() if isinstance(item, dict) else item) if isinstance(c, (dict, list))]
        if children:
            deepest = max(deepest, level + 1)
            stack.extend((child, level + 1) for child in children)
    return deepest


def _refusal(key: str, why: str) -> Refused:
    return Refused(f"the value at {key} {why}; it is left alone (inspect it with consul kv get)")


def _loads(raw: bytes, key: str, what: str) -> Any:
    if len(raw) > MAX_LIVE_BYTES:
        raise _refusal(key, f"is {len(raw):,} bytes, more than any {what}")
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as e:
        raise _refusal(key, f"is not JSON ({e})") from None
    except RecursionError:
        raise _refusal(key, f"is nested deeper than any {what}") from None


def _require_depth(value: Any, key: str, what: str) -> None:
    if _depth(value) > MAX_DEPTH:
        raise _refusal(key, f"is nested deeper than any {what} ({MAX_DEPTH} levels)")


def parse_json(raw: bytes, key: str, what: str) -> Any:
    """A JSON value read from Consul, bounded in size and depth; NaN and Infinity are not JSON."""
    value = _loads(raw, key, what)
    _require_depth(value, key, what)
    return value


class Live(NamedTuple):
    """The live value of the key: the document (None when the key is absent or empty), the old envelope's meta ({}
    for a bare document), and whether it is sealed: exactly what fieldsync wrote, unchanged since."""

    doc: dict[str, Any] | None
    meta: dict[str, Any]
    sealed: bool = False


def read_live(raw: bytes | None, key: str) -> Live:
    """The live document, bare or unwrapped from the old {"data": ..., "meta": ...} envelope. Anything that is not
    a fields document as schema/live.schema.json says is refused, named and left alone."""
    if raw is None or not raw.strip():
        return Live(None, {})
    doc = _loads(raw, key, "fields document")
    meta: dict[str, Any] = {}
    if isinstance(doc, dict) and isinstance(doc.get("data"), dict) and "fields" in doc["data"]:
        meta = doc["meta"] if isinstance(doc.get("meta"), dict) else {}
        doc = doc["data"]
    sealed = isinstance(doc, dict) and isinstance(doc.get("content_hash"), str) and is_sealed(doc)
    if not sealed:  # a document fieldsync wrote nests as its schema says
        _require_depth(doc, key, "fields document")
    validator = schemas.validator("live")
    if not validator.is_valid(doc):
        error = next(iter(validator.errors(doc)))
        where = "/".join(str(p) for p in error.absolute_path) or "the top level"
        raise Refused(f"the value at {key} is not a fields document (at {where}: {error.message}); it is left alone")
    names = [record["name"] for record in doc["fields"]]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise Refused(f"the value at {key} names a field twice ({', '.join(twice)}); it is left alone")
    return Live(doc, meta, sealed)


def decode(raw: bytes | None, key: str) -> dict[str, Any] | None:
    """The live document, bare or unwrapped from the old envelope; None when the key is absent."""
    return read_live(raw, key).doc


def built_from(doc: dict[str, Any] | None) -> str | None:
    """The commit a document says it was built from, if any."""
    return ((doc or {}).get("git") or {}).get("commit")


def _without(value: Any, key: str) -> Any:
    return {k: v for k, v in value.items() if k != key} if isinstance(value, dict) else value


def _strip(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The document without what changes from run to run while what readers use does not: its timestamps, the
    servers' read durations, and the ref its commit was named by."""
    stripped = _without(doc, "last_updated")
    if isinstance(status := doc.get("extraction_status"), dict):
        stripped["extraction_status"] = status = _without(status, "extracted_at")
        if isinstance(status.get("server_status"), list):
            status["server_status"] = [_without(e, "duration_ms") for e in status["server_status"]]
    if "git" in doc:
        stripped["git"] = _without(doc["git"], "ref")
    return stripped


def content(doc: dict[str, Any] | None) -> bytes:
    """The document's bytes without its timestamps and durations: equal content, equal bytes."""
    return b"" if doc is None else encode(_strip(doc))


def content_hash(doc: dict[str, Any]) -> str:
    """Hash of the content, not counting the recorded hash itself."""
    unsealed = {k: v for k, v in doc.items() if k != "content_hash"}
    return "sha256:" + hashlib.sha256(content(unsealed)).hexdigest()


def seal(doc: dict[str, Any]) -> dict[str, Any]:
    """Record the content hash in the document, so an edit made outside fieldsync shows."""
    return {**doc, "content_hash": content_hash(doc)}


def is_sealed(doc: dict[str, Any]) -> bool:
    """True when the document is exactly what fieldsync wrote (timestamps and durations aside)."""
    return doc.get("content_hash") == content_hash(doc)
