"""Which fields a Prometheus configuration yields (pure), and extraction from many servers at once."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .config import ServerSpec

# What Prometheus fills in for a relabel rule that does not say; applied to file sources too.
DEFAULT_REGEX = "(.*)"
DEFAULT_REPLACEMENT = "$1"


@dataclass(frozen=True)
class Rule:
    """A field as one relabel rule defines it."""

    name: str
    source_label: str
    regex: str
    replacement: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "source_label": self.source_label, "regex": self.regex,
                "replacement": self.replacement}


@dataclass(frozen=True)
class ServerStatus:
    """The outcome of extracting from one server."""

    name: str
    url: str
    success: bool
    error: str | None = None
    duration_ms: int = 0
    external_labels: dict[str, str] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "success": self.success, "error": self.error,
                "duration_ms": self.duration_ms, "fields_count": len(self.rules),
                "external_labels": self.external_labels, "fields": [r.to_json() for r in self.rules]}


def _is_multi_target(job: dict[str, Any]) -> bool:
    """A blackbox-style job: it probes targets given as a parameter."""
    rules = job.get("relabel_configs") or []
    return (str(job.get("metrics_path", "")).endswith("/probe")
            or "target" in (job.get("params") or {})
            or any(r.get("target_label") == "__param_target" for r in rules))


def _is_field_source(label: str) -> bool:
    return label.startswith(("__meta_", "__param_")) or not label.startswith("__")


def rules_from_config(config: dict[str, Any]) -> tuple[Rule, ...]:
    """Fields of one Prometheus config, in job order then rule order; the first rule for a name wins."""
    found: dict[str, Rule] = {}
    for job in config.get("scrape_configs") or []:
        multi = _is_multi_target(job)
        for rule in job.get("relabel_configs") or []:
            target = rule.get("target_label")
            if not target or target.startswith("__") or target == "job" or target in found:
                continue
            sources = [str(s) for s in rule.get("source_labels") or []]
            if not (multi or any(_is_field_source(s) for s in sources)):
                continue
            meta = next((s for s in sources if s.startswith("__meta_")), None)
            found[target] = Rule(target, meta or (sources[0] if sources else ""),
                                 str(rule.get("regex", DEFAULT_REGEX)),
                                 str(rule.get("replacement", DEFAULT_REPLACEMENT)))
    return tuple(found.values())


def external_labels(config: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in ((config.get("global") or {}).get("external_labels") or {}).items()}


def extract_one(server: ServerSpec, fetch: Callable[[ServerSpec], dict[str, Any]]) -> ServerStatus:
    start = time.perf_counter()
    try:
        config = fetch(server)
        rules, labels = rules_from_config(config), external_labels(config)
    except Exception as e:  # any failure of one server is reported in its status, never raised
        elapsed = round((time.perf_counter() - start) * 1000)
        return ServerStatus(server.name, server.location, False, str(e) or type(e).__name__, elapsed)
    elapsed = round((time.perf_counter() - start) * 1000)
    return ServerStatus(server.name, server.location, True, None, elapsed, labels, rules)


def extract_all(servers: Iterable[ServerSpec], fetch: Callable[[ServerSpec], dict[str, Any]]) -> list[ServerStatus]:
    """Extract from every server concurrently; statuses come back in the servers' order."""
    servers = list(servers)
    if not servers:
        return []
    with ThreadPoolExecutor(max_workers=min(32, len(servers))) as pool:
        return list(pool.map(lambda s: extract_one(s, fetch), servers))
