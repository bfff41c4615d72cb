"""init: a new repository to adopt fieldsync in, holding the config, the schemas, an empty fields/, the workflows
and a pre-commit config. Adoption starts here, never from a clone of fieldsync's own repository, whose sample
fields and example Prometheus would otherwise be written to a production key."""

from __future__ import annotations

import importlib.metadata
import json
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ..adapters import files, git
from ..adapters.consul import ConsulKV
from ..errors import UsageError
from ..model import CONFIG_FILE, FIELDS_DIR, InitResult, ServerMatch
from ..rules import document, legacy, pinning, schemas
from ..rules.config import config_text, default_config, parse_config
from ..rules.fieldcheck import PLACEHOLDER
from .extract import Fetch, extract_all, fetch
from .settings import servers_from_args

_TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
REQUIREMENTS = ".github/fieldsync-requirements.txt"


def _template(name: str) -> bytes:
    return files.read_bytes(str(_TEMPLATES / name), "template")


def _installed(name: str) -> tuple[str, list[str]] | None:
    try:
        found = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return None
    return found.version, found.requires or []


def fieldsync_source(given: str | None) -> str:
    """Where the workflows install fieldsync from: `given`, or where this fieldsync was installed from when the
    workflows can reach it pinned (rules/pinning.py)."""
    if given is not None:
        return pinning.pinned_source(given)
    try:
        found = importlib.metadata.distribution(pinning.PROJECT)
        direct_url = json.loads(found.read_text("direct_url.json") or "null")
        where = str(direct_url["url"]) if direct_url else "a package index, by name"
    except (importlib.metadata.PackageNotFoundError, ValueError, KeyError, TypeError):
        direct_url, where = None, "somewhere its metadata does not say"
    source = pinning.installed_from(direct_url)
    if source is None:
        raise UsageError(f"this fieldsync was installed from {where}, which is not a source the workflows can install "
                         f"pinned: give --fieldsync-source {pinning.FORMS}")
    return source


def init(*, directory: str, prometheus: Sequence[str] = (), key: str | None = None, kv: ConsulKV | None = None,
         source: str | None = None, fetch: Fetch = fetch) -> InitResult:
    """Create `directory` as a git repository (branch main) with its first commit. With `kv`, the live document's
    server_status[] names each server as the old system did (rules/legacy.py: match_servers), so that its readers
    find every site and "discovered in" as before. The workflows install fieldsync from `source` (fieldsync_source)."""
    if os.path.exists(directory) and (not os.path.isdir(directory) or os.listdir(directory)):
        raise UsageError(f"{directory} exists and is not empty; init makes a new repository")
    source = fieldsync_source(source)
    servers = servers_from_args([os.path.abspath(p) if os.path.exists(p) else p for p in prometheus])
    defaults = default_config()
    key = key or defaults.key
    matches: list[ServerMatch] = []
    unmatched: list[str] = []
    live = document.decode(kv.read(key)[0], key) if kv is not None else None
    if live is not None:
        matches, unmatched = legacy.match_servers(live, list(zip(servers, extract_all(servers, fetch), strict=True)))
        named = {m.server: m.hostname for m in matches if m.hostname}
        servers = tuple(replace(s, hostname=named.get(s.name, s.hostname)) for s in servers)
    note = (None if live is not None else
            "no Consul given (CONSUL_HTTP_ADDR), so no live document named the servers" if kv is None else
            f"{key} holds no document yet")
    config = config_text(key, servers, defaults.drift)
    parse_config(os.path.join(directory, CONFIG_FILE), config.encode())  # what init writes must be valid
    content = {
        CONFIG_FILE: config.encode(),
        **{f"schema/{p.name}": p.read_bytes() for p in sorted(schemas.SCHEMA_DIR.glob("*.schema.json"))},
        f"{FIELDS_DIR}/{PLACEHOLDER}": b"",
        ".github/workflows/validate.yml": _template("github/validate.yml"),
        ".github/workflows/sync.yml": _template("github/sync.yml"),
        REQUIREMENTS: pinning.requirements_text(source, pinning.pins(_installed)).encode(),
        ".pre-commit-config.yaml": _template("pre-commit-config.yaml"),
    }
    commit = git.init_with_commit(directory, content, "fieldsync init")
    return InitResult(commit, key, source, tuple(matches), tuple(unmatched), note)
