"""The old system's backend as it writes the fields document, per ../shared/skills-eye/CONTRACT.md: written here from
those facts (and from what its own code was seen to do), never copied. It runs against a real Consul, with the
same races: reads without index, writes without check-and-set.

- its startup prewarm merges a fresh extraction into the stored records: display settings are kept, `field_type` is
  set back to the type it infers from the name and `options` to null on every extracted record, attributes its
  extractor does not know are dropped; orphans (records it did not extract) stay as they are; every other top-level
  key of the document stays; it writes the `{data, meta}` envelope and copies the document to `<key>.backup` (and
  `.backup.history`). On an empty key it first restores that backup (meta `restored_from_backup`), then merges;
  without a backup it populates the key from its extraction alone;
- its empty-key fallback (a read that finds the key empty) writes a fresh document from its extraction alone;
- its UI's edit (PATCH) reads the document through a cache of up to 5 minutes, changes one record, and writes the
  whole document back bare, `source` kept as it was.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import consul as py_consul

from fieldsync.localservers import ConsulAgent

from .kv import client

INFERRED_SELECT = {"env", "module", "os", "region", "datacenter"}
KEPT_BY_MERGE = [
    "required", "auto_register", "category", "order", "description", "show_in_table", "show_in_dashboard",
    "show_in_form", "show_in_services", "show_in_exporters", "show_in_blackbox", "show_in_filter",
    "show_in_network_probes", "show_in_web_probes", "show_in_system_exporters", "show_in_database_exporters",
    "show_in_infrastructure_exporters", "show_in_hardware_exporters", "editable", "enabled",
    "available_for_registration", "validation_regex", "validation", "default_value", "placeholder", "display_name",
]
PAGES = ["show_in_form", "show_in_services", "show_in_exporters", "show_in_blackbox", "show_in_filter",
         "show_in_network_probes", "show_in_web_probes", "show_in_system_exporters", "show_in_database_exporters",
         "show_in_infrastructure_exporters", "show_in_hardware_exporters"]


def extracted_record(index: int, name: str, source_label: str) -> dict[str, Any]:
    """A record as its extractor makes it: 31 keys, nulls for what it does not know."""
    return {
        "name": name, "display_name": " ".join(p.capitalize() for p in name.split("_")), "source_label": source_label,
        "field_type": "select" if name in INFERRED_SELECT else "string", "required": name in {"company", "env"},
        "show_in_table": True, "show_in_dashboard": name in {"company", "env"}, "options": None, "regex": None,
        "replacement": None, "description": "", **dict.fromkeys(PAGES, True), "order": index, "category": "extra",
        "editable": True, "enabled": True, "available_for_registration": False, "validation_regex": None,
        "validation": None, "default_value": None, "placeholder": "",
    }


class OldBackend:
    """One process of the old backend: its prewarm, its fallback, and its UI's edit with its own cache."""

    def __init__(self, agent: ConsulAgent, key: str, extracted: list[tuple[str, str]]) -> None:
        self.kv: py_consul.Consul = client(agent)
        self.key = key
        self.extracted = extracted  # (name, source label) its extractor finds, in its order
        self.cache: dict[str, Any] | None = None  # its 5-minute cache of the document

    def _get(self, key: str) -> Any:
        _, item = self.kv.kv.get(key)
        if item is None or not item["Value"]:
            return None
        value = json.loads(item["Value"])
        return value["data"] if isinstance(value, dict) and "data" in value and "meta" in value else value

    def _put(self, key: str, value: Any, meta: dict[str, Any] | None = None) -> None:
        payload = value if meta is None else {"data": value, "meta": {
            "created_at": "2026-12-03T00:00:00", "updated_at": "2026-12-03T00:00:01", "updated_by": "system",
            "version": 1, **meta}}
        self.kv.kv.put(key, json.dumps(payload, ensure_ascii=False).encode())

    def _extraction(self) -> list[dict[str, Any]]:
        return [extracted_record(i, name, label) for i, (name, label) in enumerate(self.extracted, start=1)]

    def _status(self) -> dict[str, Any]:
        fields = [{"name": n, "source_label": s, "regex": None, "replacement": None} for n, s in self.extracted]
        return {"total_servers": 1, "successful_servers": 1, "extraction_complete": True, "server_status": [
            {"hostname": "127.0.0.1", "port": 22, "success": True, "files_count": 1, "fields_count": len(fields),
             "error": None, "duration_ms": 812, "from_cache": False, "external_labels": {"cluster": "demo"},
             "fields": fields}]}

    def merge(self, stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
        by_name = {r["name"]: r for r in stored}
        merged = []
        for record in self._extraction():
            kept = by_name.get(record["name"])
            if kept is not None:
                record.update({k: kept[k] for k in KEPT_BY_MERGE if k in kept})
            merged.append(record)
        names = {name for name, _ in self.extracted}
        return merged + [r for r in stored if r["name"] not in names]  # orphans, as they were

    def prewarm(self, during: Callable[[], None] = lambda: None) -> str:
        """A restart of the backend: what its startup prewarm does; returns which path it took. `during` runs
        between its read and its write (its extraction takes seconds there)."""
        existing = self._get(self.key)
        during()
        path = "merge"
        if not existing or not existing.get("fields"):
            backup = self._get(f"{self.key}.backup")
            if backup:
                self._put(self.key, backup["fields_data"], {"restored_from_backup": True,
                                                            "backup_timestamp": backup["backup_timestamp"]})
                existing, path = copy.deepcopy(backup["fields_data"]), "restore"
            else:
                fresh = {"version": "2.0.0", "last_updated": "2026-12-03T00:00:02", "source": "prewarm_startup_initial",
                         "total_fields": len(self.extracted), "fields": self._extraction(),
                         "extraction_status": self._status()}
                self._put(self.key, fresh, {"auto_updated": True, "source": "startup_prewarm_initial"})
                return "initial"
        existing["fields"] = self.merge(existing["fields"])
        existing.update(extraction_status=self._status(), last_updated="2026-12-03T00:00:03",
                        source="prewarm_update_with_merge")
        backup = {"fields_data": existing, "backup_timestamp": "2026-12-03T00:00:04Z", "backup_version": "2.0.0",
                  "total_fields": len(existing["fields"])}
        self._put(f"{self.key}.backup", backup, {"backup": True})
        self._put(self.key, existing, {"auto_updated": True, "source": "prewarm_update_with_merge"})
        return path

    def fallback(self) -> bool:
        """A read of the fields API: when the key is empty, its fallback fills it from extraction; True if it did."""
        if self._get(self.key):
            return False
        fresh = {"version": "2.0.0", "last_updated": "2026-12-03T00:00:05", "source": "initial_extraction",
                 "total_fields": len(self.extracted), "fields": self._extraction(),
                 "extraction_status": self._status()}
        self._put(self.key, fresh, {"auto_updated": True, "source": "extraction_with_merge"})
        return True

    def read(self, fresh: bool = False) -> dict[str, Any]:
        """The document through its cache (`fresh`: the cache expired)."""
        if fresh or self.cache is None:
            self.cache = self._get(self.key)
        assert self.cache is not None
        return self.cache

    def edit(self, field: str, fresh: bool = True, **changes: Any) -> None:
        """Its UI's PATCH of one record: read (through the cache), change, write the whole document back, bare."""
        doc = copy.deepcopy(self.read(fresh))
        for record in doc["fields"]:
            if record["name"] == field:
                record.update(changes)
        doc["last_updated"] = "2026-12-03T00:00:06Z"
        self._put(self.key, doc)
        self.cache = doc


def extracted_of(agent: ConsulAgent, key: str) -> list[tuple[str, str]]:
    """What the old extractor finds on the servers fieldsync synced `key` from: the same names and source labels
    (CONTRACT.md: the two agree exactly)."""
    _, item = client(agent).kv.get(key)
    doc = json.loads(item["Value"])
    return [(r["name"], r["source_label"]) for r in doc["fields"] if r["source_label"]]


# --- its readers, as CONTRACT.md describes them -------------------------------------------------------------------

def discovered_in(field: str, server_status: list[dict[str, Any]]) -> list[str]:
    """"Discovered in", recomputed at read time: the hostname of every entry whose `fields` lists the field (as a
    name, or as an object with that name); an entry without hostname adds nothing."""
    return [entry["hostname"] for entry in server_status if entry.get("hostname")
            and any(item == field or (isinstance(item, dict) and item.get("name") == field)
                    for item in entry.get("fields") or [])]


def site_labels(hostname: str, server_status: list[dict[str, Any]]) -> dict[str, str]:
    """A site's external labels, looked up by hostname."""
    return next((dict(e.get("external_labels") or {}) for e in server_status if e.get("hostname") == hostname), {})


def listed(doc: dict[str, Any]) -> list[str]:
    """Its list endpoint: the records sorted by `order` (stable)."""
    return [r["name"] for r in sorted(doc["fields"], key=lambda r: r.get("order", 999))]
