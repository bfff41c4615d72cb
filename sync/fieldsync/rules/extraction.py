"""Which fields a Prometheus configuration yields: parsing its text, and the rules a relabel rule must meet."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from ..model import Rule

# What Prometheus fills in for a relabel rule that does not say; applied to file sources too.
DEFAULT_REGEX = "(.*)"
DEFAULT_REPLACEMENT = "$1"
_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ConfigError(Exception):
    """A Prometheus configuration that cannot be read."""


def parse(text: str, origin: str) -> dict[str, Any]:
    """One prometheus.yml's text as a mapping."""
    try:
        config = yaml.load(text, Loader=_Loader) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{origin}: not a Prometheus config: {e}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{origin}: not a Prometheus config (top level is not a mapping)")
    return config


def combine(texts: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """One server's configuration from its files' (origin, text): jobs concatenated, and the `global` of the first
    file whose `global` has external_labels, else of the first that has one (in a directory, blackbox.yml and
    other side files sort before the prometheus.yml that holds the server's external labels)."""
    merged: dict[str, Any] = {"scrape_configs": []}
    globals_ = []
    for origin, text in texts:
        config = parse(text, origin)
        if isinstance(config.get("global"), dict):
            globals_.append(config["global"])
        merged["scrape_configs"].extend(config.get("scrape_configs") or [])
    labelled = [g for g in globals_ if g.get("external_labels")]
    if labelled or globals_:
        merged["global"] = (labelled or globals_)[0]
    return merged


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
