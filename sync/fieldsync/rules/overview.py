"""The state at a glance, beyond the verdicts: each Prometheus server as the live document names it and as its last
read went, each field with where its values come from, the recent runs, and the document's size. What `status
--format json` and the status page show. Servers appear as the document names them (hostname and port): no URL,
and no address of Consul or of the git remote."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping
from enum import Enum
from typing import Any

from ..model import Document, HandEdit
from . import schemas
from .document import CONSUL_VALUE_LIMIT, entry_fields

SHOWN = ("display_name", "field_type", "category", "order")  # the attributes the fields table shows, then the flags


class Source(str, Enum):
    """Where a field's values come from."""

    GIT = "git file"
    EXTRACTED = "extracted only"
    LIVE = "live only"  # neither a file nor any server: a record someone added to the live document

    def __str__(self) -> str:
        return self.value


def page_flags() -> list[str]:
    return [a for a in schemas.field_properties() if a.startswith("show_in_")]


def _entries(live: Document | None) -> list[Mapping[str, Any]]:
    entries = ((live or {}).get("extraction_status") or {}).get("server_status") or []
    return [e for e in entries if isinstance(e, dict)]


def _without_url(error: str | None, read: Mapping[str, Any], shown: str) -> str | None:
    """An error as the page shows it: the server's URL (which may hold credentials or an internal address) named
    as the document names the server."""
    url = read.get("url")
    return error.replace(url, shown) if error and isinstance(url, str) and url else error


def servers(live: Document | None, last_run: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Each server read in the last run, then any other the live document lists: how its read went, what the
    document holds of it, and whether that is carried from an earlier read (the server failed since)."""
    entries = {str(e.get("name") or e.get("hostname")): e for e in _entries(live)}
    reads = {str(r.get("name")): r for r in (last_run or {}).get("servers") or [] if isinstance(r, dict)}
    rows = []
    for name in [*reads, *(n for n in entries if n not in reads)]:
        entry, read = entries.get(name, {}), reads.get(name, {})
        hostname = str(entry.get("hostname") or read.get("hostname") or name)
        port = entry.get("port", read.get("port"))
        shown = f"{hostname}:{port}" if port else hostname
        ok = read.get("success") if read else None
        rows.append({"name": name, "hostname": hostname, "port": port, "ok": ok,
                     "fields": len(entry_fields(entry)) if entry else read.get("fields_count"),
                     "duration_ms": read.get("duration_ms"), "error": _without_url(read.get("error"), read, shown),
                     "external_labels": dict(entry.get("external_labels") or {}),
                     "carried": ok is False and bool(entry)})
    return rows


def fields(live: Document | None, files: Collection[str] | None, edits: Iterable[HandEdit]) -> list[dict[str, Any]]:
    """Each live record in the document's order: the attributes the table shows, its page flags, where its values
    come from (`files`: the fields git has a file for; None when unknown), and which attributes hold a hand edit."""
    edited: dict[str, list[str]] = {}
    for edit in edits:
        edited.setdefault(edit.field, []).append(edit.attribute)
    found = {name for e in _entries(live) for name in entry_fields(e)}
    rows = []
    for record in (live or {}).get("fields") or []:
        if not isinstance(record, dict):
            continue
        name = str(record.get("name"))
        source = (None if files is None else Source.GIT if name in files
                  else Source.EXTRACTED if name in found or record.get("source_label") else Source.LIVE)
        rows.append({"name": name, **{a: record.get(a) for a in SHOWN},
                     "flags": {f: record.get(f, True) is not False for f in page_flags()},
                     "source": source, "hand_edited": sorted(edited.get(name, []))})
    return rows


RUN_KEYS = ("at", "outcome", "duration_ms", "trigger", "commit")


def runs(record: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The recent runs, newest first, as the run record keeps them (what older records lack is None)."""
    return [{k: r.get(k) for k in RUN_KEYS} for r in (record or {}).get("runs") or [] if isinstance(r, dict)]


def version(status: Mapping[str, Any]) -> str:
    """A name for a status's content: a live status page asks for it every second to tell whether anything
    changed."""
    return hashlib.sha256(json.dumps(status, sort_keys=True, default=str).encode()).hexdigest()[:16]


def size(raw: bytes | None, live: Document | None) -> dict[str, Any]:
    """The live value's size against Consul's limit."""
    length = len(raw or b"")
    return {"bytes": length, "limit": CONSUL_VALUE_LIMIT, "share": round(length / CONSUL_VALUE_LIMIT, 4),
            "fields": len((live or {}).get("fields") or []), "servers": len(_entries(live))}
