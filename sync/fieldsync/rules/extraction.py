"""Which fields a Prometheus configuration yields: reading its text, and the rules a relabel rule must meet.

A configuration is read as a stream of YAML events, keeping only what extraction uses (each job's name, metrics
path, params and relabel rules, one job at a time, and `global`): memory follows the rules kept, not the size of the
text, whose targets and service discovery settings can run to megabytes. Anchors are built where they are defined,
so an alias anywhere resolves; the guard against alias bombs counts the values reached through aliases, never the
values written out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..model import DEFAULT_REGEX, DEFAULT_REPLACEMENT, Rule

MAX_ALIASED = 1_000_000  # values reached through aliases: a config uses a few; aliases of aliases can reach billions
# What is kept of a node: everything (None), the keys of a mapping named (each with its own shape), or the items of
# a list in one shape. Of a job, what extraction reads of it.
Shape = dict[str, Any] | list[Any] | None
RULE_SHAPE: Shape = {"source_labels": None, "target_label": None, "regex": None, "replacement": None}
JOB_SHAPE: Shape = {"job_name": None, "metrics_path": None, "params": None, "relabel_configs": [RULE_SHAPE]}
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ConfigError(Exception):
    """A Prometheus configuration that cannot be read."""


@dataclass(frozen=True)
class FileConfig:
    """What extraction reads of one configuration file: its fields in order (the first rule for a name wins), and
    its `global` (None when it has none)."""

    rules: tuple[Rule, ...] = ()
    global_: dict[str, Any] | None = None


@dataclass(frozen=True)
class ServerConfig:
    """What extraction reads of one server's configuration, all its files together."""

    rules: tuple[Rule, ...] = ()
    external_labels: dict[str, str] = field(default_factory=dict)


def _kind(value: Any) -> str:
    return "a mapping" if isinstance(value, dict) else "a list" if isinstance(value, list) else \
        "null" if value is None else "a scalar"


# --- the rules ----------------------------------------------------------------------------------------------------

def _is_multi_target(job: Mapping[str, Any]) -> bool:
    """A blackbox-style job: it probes targets given as a parameter."""
    params = job.get("params")
    return (str(job.get("metrics_path") or "").endswith("/probe")
            or (isinstance(params, dict) and "target" in params)
            or any(r.get("target_label") == "__param_target" for r in job.get("relabel_configs") or ()))


def _is_field_source(label: str) -> bool:
    return label.startswith(("__meta_", "__param_")) or not label.startswith("__")


def _checked(job: Any, number: int, origin: str) -> dict[str, Any]:
    """A job with the shapes Prometheus gives what extraction reads of it."""
    if not isinstance(job, dict):
        raise ConfigError(f"{origin}: scrape_configs[{number}] must be a mapping (a job), got {_kind(job)}")
    rules = job.get("relabel_configs") or []
    name = job.get("job_name") or number
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        raise ConfigError(f"{origin}: relabel_configs of job {name!r} must be a list of rules (mappings)")
    if any(not isinstance(r.get("source_labels") or [], list) for r in rules):
        raise ConfigError(f"{origin}: source_labels in job {name!r} must be lists of label names")
    return job


def job_rules(job: Mapping[str, Any]) -> Iterator[Rule]:
    """The fields a job's relabel rules yield, in rule order: a target label that does not start with `__` and is
    not `job`, from a source that is service discovery metadata, a parameter or a plain label (any source in a
    multi-target job); its source label is the first `__meta_*` one, else the first."""
    multi = _is_multi_target(job)
    for rule in job.get("relabel_configs") or ():
        target = rule.get("target_label")
        if not isinstance(target, str) or not target or target.startswith("__") or target == "job":
            continue
        sources = [str(s) for s in rule.get("source_labels") or [] if s is not None]
        if not (multi or any(_is_field_source(s) for s in sources)):
            continue
        meta = next((s for s in sources if s.startswith("__meta_")), None)
        regex, replacement = rule.get("regex"), rule.get("replacement")
        yield Rule(target, meta or (sources[0] if sources else ""),
                   DEFAULT_REGEX if regex is None else str(regex),
                   DEFAULT_REPLACEMENT if replacement is None else str(replacement))


def _first_wins(found: dict[str, Rule], rules: Iterable[Rule]) -> None:
    for rule in rules:
        found.setdefault(rule.name, rule)


# --- reading the text ---------------------------------------------------------------------------------------------

class _Events:
    """One YAML text's parse events, with each anchored node built when it is met."""

    def __init__(self, text: str, origin: str) -> None:
        self._events = yaml.parse(text, Loader=_Loader)
        self.origin = origin
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.aliased = 0

    def next(self) -> Any:
        return next(self._events)

    def until(self, end: type) -> Iterator[Any]:
        """The events that start each node of a collection, up to its end event."""
        while not isinstance(event := self.next(), end):
            yield event

    def build(self, event: Any, shape: Shape = None) -> tuple[Any, int]:
        """The node that starts with `event` as plain data (scalars as text, or None for a plain null), and how
        many values it holds with its aliases expanded; only what `shape` keeps of it, unless it is anchored (an
        alias elsewhere may want all of it)."""
        if isinstance(event, yaml.AliasEvent):
            if event.anchor not in self.anchors:
                raise ConfigError(f"{self.origin}: not a Prometheus config: alias *{event.anchor} names no anchor "
                                  "defined before it")
            value, count = self.anchors[event.anchor]
            self.aliased += count
            if self.aliased > MAX_ALIASED:
                raise ConfigError(f"{self.origin}: the config expands through YAML aliases to more than "
                                  f"{MAX_ALIASED:,} values (aliases nested in aliases?); refused")
            return value, count
        if event.anchor is not None:
            shape = None
        if isinstance(event, yaml.ScalarEvent):
            built: tuple[Any, int] = (None if event.implicit[0] and event.value in _NULLS else event.value, 1)
        elif isinstance(event, yaml.SequenceStartEvent):
            items, count = [], 1
            for item in self.until(yaml.SequenceEndEvent):
                value, size = self.build(item, shape[0] if isinstance(shape, list) else None)
                items.append(value)
                count += size
            built = (items, count)
        else:
            built = self._mapping(shape if isinstance(shape, dict) else None)
        if event.anchor is not None:
            self.anchors[event.anchor] = built
        return built

    def _mapping(self, wanted: dict[str, Shape] | None) -> tuple[dict[str, Any], int]:
        """The rest of a mapping, its `wanted` keys (all when None); merge keys (<<) are applied, explicit keys
        first, then each merged mapping's."""
        found: dict[str, Any] = {}
        merged: list[Any] = []
        count = 1
        for key_event in self.until(yaml.MappingEndEvent):
            key = self.key(key_event)
            value_event = self.next()
            if key == "<<" and key_event.implicit[0]:
                value, size = self.build(value_event)
                merged.extend(value if isinstance(value, list) else [value])
            elif wanted is None or key in wanted:
                found[key], size = self.build(value_event, wanted and wanted[key])
            else:
                size = self.skip(value_event)
            count += size
        for source in merged:
            if not isinstance(source, dict):
                raise ConfigError(f"{self.origin}: not a Prometheus config: a merge key (<<) must name mappings")
            for key, value in source.items():
                if wanted is None or key in wanted:
                    found.setdefault(key, value)
        return found, count

    def key(self, event: Any) -> str:
        if not isinstance(event, yaml.ScalarEvent):
            raise ConfigError(f"{self.origin}: not a Prometheus config: a mapping key is not a scalar (line "
                              f"{event.start_mark.line + 1})")
        return str(event.value)

    def skip(self, event: Any) -> int:
        """Pass over the node that starts with `event`, building only the nodes it anchors (a later alias may name
        them); 0 values kept, or those of what was built."""
        if not isinstance(event, yaml.AliasEvent) and event.anchor is not None:
            return self.build(event)[1]
        depth = 1 if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)) else 0
        while depth:
            inner = self.next()
            if isinstance(inner, (yaml.SequenceStartEvent, yaml.MappingStartEvent, yaml.ScalarEvent)) \
                    and inner.anchor is not None:
                self.build(inner)
            elif isinstance(inner, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
            elif isinstance(inner, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
        return 0

    def jobs(self, event: Any) -> Iterator[Any]:
        """The jobs of scrape_configs, one at a time, each holding only what extraction reads."""
        if isinstance(event, yaml.SequenceStartEvent) and event.anchor is None:
            for item in self.until(yaml.SequenceEndEvent):
                yield self.build(item, JOB_SHAPE)[0]
            return
        jobs = self.build(event, [JOB_SHAPE])[0]
        if jobs is None:
            return
        if not isinstance(jobs, list):
            raise ConfigError(f"{self.origin}: scrape_configs must be a list of jobs, got {_kind(jobs)}")
        yield from jobs


def read(text: str, origin: str) -> FileConfig:
    """One prometheus.yml's fields and `global`, its shape checked where extraction reads it."""
    events = _Events(text, origin)
    found: dict[str, Rule] = {}
    global_: Any = None
    try:
        events.next()  # the stream's start
        document = events.next()
        if isinstance(document, yaml.StreamEndEvent):
            return FileConfig()
        root = events.next()
        if isinstance(root, yaml.ScalarEvent) and root.implicit[0] and root.value in _NULLS:
            events.next()  # an empty document
        elif not isinstance(root, yaml.MappingStartEvent):
            raise ConfigError(f"{origin}: not a Prometheus config (top level is not a mapping)")
        else:
            for key_event in events.until(yaml.MappingEndEvent):
                key, value_event = events.key(key_event), events.next()
                if key == "scrape_configs":
                    for number, job in enumerate(events.jobs(value_event)):
                        _first_wins(found, job_rules(_checked(job, number, origin)))
                elif key == "global":
                    global_ = events.build(value_event)[0]
                else:
                    events.skip(value_event)
            events.next()  # the document's end
        if not isinstance(events.next(), yaml.StreamEndEvent):
            raise ConfigError(f"{origin}: not a Prometheus config: more than one YAML document")
    except yaml.YAMLError as e:
        raise ConfigError(f"{origin}: not a Prometheus config: {e}") from None
    except RecursionError:
        raise ConfigError(f"{origin}: not a Prometheus config: nested too deeply") from None
    if global_ is not None and not isinstance(global_, dict):
        raise ConfigError(f"{origin}: global must be a mapping, got {_kind(global_)}")
    if not isinstance((global_ or {}).get("external_labels") or {}, dict):
        raise ConfigError(f"{origin}: global.external_labels must be a mapping")
    return FileConfig(tuple(found.values()), global_)


def combine(texts: Iterable[tuple[str, str]]) -> ServerConfig:
    """One server's configuration from its files' (origin, text), read in order: jobs one after another, and the
    `global` of the first file whose `global` has external_labels, else of the first that has one (in a directory,
    blackbox.yml and other side files sort before the prometheus.yml that holds the server's external labels)."""
    found: dict[str, Rule] = {}
    globals_ = []
    for origin, text in texts:
        config = read(text, origin)
        _first_wins(found, config.rules)
        if config.global_ is not None:
            globals_.append(config.global_)
    labelled = [g for g in globals_ if g.get("external_labels")]
    chosen = (labelled or globals_ or [{}])[0]
    labels = {str(k): "" if v is None else str(v) for k, v in (chosen.get("external_labels") or {}).items()}
    return ServerConfig(tuple(found.values()), labels)
