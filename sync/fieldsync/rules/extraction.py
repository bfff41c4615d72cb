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


MAX_VALUES = 200_000  # a production config holds a few thousand; aliases nested in aliases can hold billions


def _expanded_size(value: Any, limit: int) -> int:
    """How many values `value` holds with every alias expanded, counted without recursion up to `limit`."""
    count, stack = 0, [value]
    while stack and count <= limit:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def _kind(value: Any) -> str:
    return type(value).__name__


def _check_shape(config: dict[str, Any], origin: str) -> None:
    """The parts of a Prometheus config that extraction reads must have the shapes Prometheus gives them."""
    if _expanded_size(config, MAX_VALUES) > MAX_VALUES:
        raise ConfigError(f"{origin}: the config expands to more than {MAX_VALUES:,} values (YAML aliases nested in "
                          "aliases?); refused")
    jobs = config.get("scrape_configs") or []
    if not isinstance(jobs, list):
        raise ConfigError(f"{origin}: scrape_configs must be a list of jobs, got {_kind(jobs)}")
    if not isinstance(config.get("global") or {}, dict):
        raise ConfigError(f"{origin}: global must be a mapping, got {_kind(config['global'])}")
    if not isinstance((config.get("global") or {}).get("external_labels") or {}, dict):
        raise ConfigError(f"{origin}: global.external_labels must be a mapping")
    for i, job in enumerate(jobs):
        if not isinstance(job, dict):
            raise ConfigError(f"{origin}: scrape_configs[{i}] must be a mapping (a job), got {_kind(job)}")
        rules = job.get("relabel_configs") or []
        name = job.get("job_name", i)
        if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
            raise ConfigError(f"{origin}: relabel_configs of job {name!r} must be a list of rules (mappings)")
        if any(not isinstance(r.get("source_labels") or [], list) for r in rules):
            raise ConfigError(f"{origin}: source_labels in job {name!r} must be lists of label names")


def parse(text: str, origin: str) -> dict[str, Any]:
    """One prometheus.yml's text as a mapping, its shape checked where extraction reads it."""
    try:
        config = yaml.load(text, Loader=_Loader) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{origin}: not a Prometheus config: {e}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{origin}: not a Prometheus config (top level is not a mapping)")
    _check_shape(config, origin)
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
