"""The sync configuration: fieldsync.yaml (schema/config.schema.json), overridden by flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from . import schemas
from .errors import FieldsyncError, UsageError
from .fieldcheck import load_document

CONFIG_FILE = "fieldsync.yaml"
NO_SERVERS = "no Prometheus server given: use --prometheus URL|FILE or the config file"


@dataclass(frozen=True)
class ServerSpec:
    """One Prometheus server: a base URL (HTTP API) or a config file/directory read directly."""

    name: str
    url: str | None = None
    file: str | None = None
    username: str | None = None
    password_file: str | None = None
    bearer_token_file: str | None = None
    ca_file: str | None = None
    timeout: float = 10.0
    retries: int = 2

    @property
    def location(self) -> str:
        return self.url or self.file or ""


@dataclass(frozen=True)
class Config:
    key: str
    lock_timeout: float
    servers: tuple[ServerSpec, ...] = field(default=())


def _server_defaults() -> dict:
    props = schemas.load("config")["$defs"]["server"]["properties"]
    return {k: v["default"] for k, v in props.items() if "default" in v}


def server_from_arg(arg: str) -> ServerSpec:
    """A --prometheus URL|FILE argument; named after the URL's host:port or the file's name."""
    defaults = _server_defaults()
    if arg.startswith(("http://", "https://")):
        return ServerSpec(name=urlsplit(arg).netloc, url=arg, **defaults)
    if not os.path.exists(arg):
        raise UsageError(f"--prometheus {arg}: not a URL (http://, https://) nor an existing file or directory")
    return ServerSpec(name=os.path.basename(os.path.normpath(arg)), file=arg, **defaults)


def load_config(path: str | None, repo: str) -> Config:
    """Read the config file (explicit path, else <repo>/fieldsync.yaml when present, else defaults)."""
    top = schemas.load("config")["properties"]
    if path is None:
        candidate = os.path.join(repo, CONFIG_FILE)
        path = candidate if os.path.exists(candidate) else None
    if path is None:
        return Config(top["key"]["default"], top["lock_timeout"]["default"])
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise UsageError(f"config {path}: {e.strerror}") from None
    doc, _, problems = load_document(path, data, "config")
    if problems:
        raise FieldsyncError("invalid config:\n" + "\n".join(p.text() for p in problems))
    assert doc is not None
    base = os.path.dirname(os.path.abspath(path))
    servers = []
    for item in doc.get("prometheus", []):
        auth = item.get("basic_auth", {})
        relative = {k: os.path.join(base, item[k]) for k in ("file", "bearer_token_file", "ca_file") if k in item}
        servers.append(ServerSpec(
            **{**_server_defaults(), **{k: v for k, v in item.items() if k != "basic_auth"}, **relative},
            username=auth.get("username"),
            password_file=os.path.join(base, auth["password_file"]) if auth else None,
        ))
    names = [s.name for s in servers]
    if len(set(names)) != len(names):
        raise FieldsyncError(f"config {path}: Prometheus server names must be unique: {names}")
    return Config(doc.get("key", top["key"]["default"]), doc.get("lock_timeout", top["lock_timeout"]["default"]),
                  tuple(servers))
