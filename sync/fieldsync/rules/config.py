"""The sync configuration: fieldsync.yaml (schema/config.schema.json) and --prometheus arguments, parsed."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from ..errors import FieldsyncError
from ..model import Config, DeletionBudget, ServerSpec
from . import schemas
from .fieldcheck import load_document

NO_SERVERS = "no Prometheus server given: use --prometheus URL|FILE or the config file"


def _server_defaults() -> dict[str, Any]:
    props = schemas.load("config")["$defs"]["server"]["properties"]
    return {k: v["default"] for k, v in props.items() if "default" in v}


def lock_key(key: str, state_prefix: str) -> str:
    return f"{state_prefix}{key}.lock"


def status_key(key: str, state_prefix: str) -> str:
    """Where the run record of `key` lives."""
    return f"{state_prefix}{key}.status"


def leader_key(key: str, state_prefix: str) -> str:
    """The lock the replicas of `fieldsync serve` elect their leader with."""
    return f"{state_prefix}{key}.leader"


def nudge_key(key: str, state_prefix: str) -> str:
    """Where a standby that received a webhook tells the leader to fetch and sync."""
    return f"{state_prefix}{key}.nudge"


def key_problem(key: str) -> str | None:
    """Why a Consul key cannot name the document, if it cannot: Consul (and py-consul) store 'a/./b' or 'a//b'
    under another key than the one given, and refuse a leading '/'."""
    if not key or key.startswith("/") or key.endswith("/"):
        return f"{key!r} must not be empty, start or end with '/'"
    if any(part in ("", ".", "..") for part in key.split("/")):
        return f"{key!r} must not hold empty, '.' or '..' segments"
    return None


def default_config() -> Config:
    top = schemas.load("config")["properties"]
    budget = top["deletion_budget"]["default"]
    return Config(top["key"]["default"], top["lock_timeout"]["default"], drift=top["drift"]["default"],
                  state_prefix=top["state_prefix"]["default"], deletion_budget=DeletionBudget(**budget))


def is_url(arg: str) -> bool:
    return arg.startswith(("http://", "https://"))


def hostname_of(name: str, url: str | None) -> str:
    """The default hostname of a server: its URL's host, else its name."""
    return (urlsplit(url).hostname if url else None) or name


def port_of(url: str | None) -> int | None:
    if not url:
        return None
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def server_from_arg(arg: str) -> ServerSpec:
    """A --prometheus URL|FILE argument; named after the URL's host:port or the file's name."""
    if is_url(arg):
        name = urlsplit(arg).netloc
        return ServerSpec(name=name, url=arg, hostname=hostname_of(name, arg), **_server_defaults())
    name = os.path.basename(os.path.normpath(arg))
    return ServerSpec(name=name, file=arg, hostname=name, **_server_defaults())


def require_unique_names(servers: tuple[ServerSpec, ...], where: str) -> None:
    names = [s.name for s in servers]
    if len(set(names)) != len(names):
        raise FieldsyncError(f"{where}: Prometheus server names must be unique: {names}")


def config_text(key: str, servers: Sequence[ServerSpec], drift: str) -> str:
    """A fieldsync.yaml for `fieldsync init`, with the editor's schema modeline and a note per setting."""
    lines = ["# yaml-language-server: $schema=schema/config.schema.json",
             "# fieldsync configuration. Flags (--key, --prometheus, --drift) and CONSUL_* variables override it.",
             f"key: {json.dumps(key)}",
             "lock_timeout: 60",
             "# keep: sync keeps hand edits (pending `fieldsync import --from-kv`); one git changed too keeps its",
             "# value until resolved; refuse: sync refuses to overwrite any; revert: git wins, recording what it",
             "# overwrote.",
             f"drift: {drift}",
             "prometheus:" if servers else "prometheus: []  # add servers: - {name: prom-a, url: 'http://...:9090'}"]
    for s in servers:
        where = f"url: {json.dumps(s.url)}" if s.url else f"file: {json.dumps(s.file)}"
        lines.append(f"  - {{name: {json.dumps(s.name)}, {where}, hostname: {json.dumps(s.hostname)}}}")
    return "\n".join(lines) + "\n"


def parse_config(path: str, data: bytes) -> Config:
    """A config file's bytes; relative paths in it are relative to the file's directory."""
    doc, _, problems = load_document(path, data, "config")
    if problems:
        raise FieldsyncError("invalid config:\n" + "\n".join(p.text() for p in problems))
    assert doc is not None
    defaults = default_config()
    base = os.path.dirname(os.path.abspath(path))
    servers = []
    for item in doc.get("prometheus", []):
        auth = item.get("basic_auth", {})
        relative = {k: os.path.join(base, item[k]) for k in ("file", "bearer_token_file", "ca_file") if k in item}
        fields = {**_server_defaults(), **{k: v for k, v in item.items() if k != "basic_auth"}, **relative}
        fields.setdefault("hostname", hostname_of(item["name"], item.get("url")))
        servers.append(ServerSpec(**fields, username=auth.get("username"),
                                  password_file=os.path.join(base, auth["password_file"]) if auth else None))
    require_unique_names(tuple(servers), f"config {path}")
    bad_key = key_problem(doc.get("key", defaults.key))
    if bad_key:
        raise FieldsyncError(f"config {path}: key {bad_key}")
    budget = {**vars(defaults.deletion_budget), **doc.get("deletion_budget", {})}
    return Config(doc.get("key", defaults.key), doc.get("lock_timeout", defaults.lock_timeout), tuple(servers),
                  doc.get("drift", defaults.drift), doc.get("state_prefix", defaults.state_prefix),
                  DeletionBudget(**budget), tuple(doc.get("consul", {}).get("addresses", ())),
                  tuple(doc.get("order_ties", ())))


ORDER_TIES_NOTE = "# fields of equal order, listed as the old system listed them (written by fieldsync import)"


def with_order_ties(text: str, names: Sequence[str]) -> str:
    """A fieldsync.yaml's text with its `order_ties` line set to `names` (added at the end when it has none; removed
    when `names` is empty); the rest of the file, comments included, as it was."""
    lines = [line for line in text.splitlines() if not line.startswith("order_ties:") and line != ORDER_TIES_NOTE]
    if names:
        lines += [ORDER_TIES_NOTE, f"order_ties: [{', '.join(json.dumps(n, ensure_ascii=False) for n in names)}]"]
    return "\n".join(lines) + "\n"
