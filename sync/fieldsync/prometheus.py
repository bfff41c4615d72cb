"""Read a Prometheus server's running configuration: over its HTTP API, or from files for offline use."""

from __future__ import annotations

import base64
import glob
import json
import os
import ssl
import time
import urllib.error
import urllib.request
from typing import Any

import yaml

from .config import ServerSpec

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class PrometheusError(Exception):
    """The server's configuration could not be read."""


def _read_secret(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError as e:
        raise PrometheusError(f"cannot read {path}: {e.strerror}") from None


def _request(server: ServerSpec) -> urllib.request.Request:
    request = urllib.request.Request(server.url.rstrip("/") + "/api/v1/status/config",  # type: ignore[union-attr]
                                     headers={"Accept": "application/json"})
    if server.username is not None:
        password = _read_secret(server.password_file) if server.password_file else ""
        token = base64.b64encode(f"{server.username}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    if server.bearer_token_file:
        request.add_header("Authorization", f"Bearer {_read_secret(server.bearer_token_file)}")
    return request


def _parse(text: str, origin: str) -> dict[str, Any]:
    try:
        config = yaml.load(text, Loader=_Loader) or {}
    except yaml.YAMLError as e:
        raise PrometheusError(f"{origin}: not a Prometheus config: {e}") from None
    if not isinstance(config, dict):
        raise PrometheusError(f"{origin}: not a Prometheus config (top level is not a mapping)")
    return config


def fetch_url(server: ServerSpec) -> dict[str, Any]:
    """GET /api/v1/status/config; connection errors and 5xx answers are retried with backoff."""
    request = _request(server)
    context = ssl.create_default_context(cafile=server.ca_file) if server.ca_file else None
    for attempt in range(server.retries + 1):
        try:
            with urllib.request.urlopen(request, timeout=server.timeout, context=context) as response:
                body = json.load(response)
            if body.get("status") != "success":
                raise PrometheusError(f"{server.url}: API answered {body.get('status')}: {body.get('error')}")
            return _parse(body["data"]["yaml"], server.url)  # type: ignore[arg-type]
        except urllib.error.HTTPError as e:
            if e.code < 500 or attempt == server.retries:
                raise PrometheusError(f"{server.url}: HTTP {e.code} {e.reason}") from None
        except (urllib.error.URLError, OSError) as e:
            if attempt == server.retries:
                reason = getattr(e, "reason", e)
                raise PrometheusError(f"{server.url}: {reason} (after {attempt + 1} attempts)") from None
        except (ValueError, KeyError, TypeError):
            raise PrometheusError(f"{server.url}: answer is not a Prometheus status/config response") from None
        time.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable")


def fetch_file(server: ServerSpec) -> dict[str, Any]:
    """A prometheus.yml, or every *.yml/*.yaml of a directory (jobs concatenated, first global wins)."""
    path = server.file or ""
    files = sorted(glob.glob(os.path.join(path, "*.yml")) + glob.glob(os.path.join(path, "*.yaml"))) \
        if os.path.isdir(path) else [path]
    if not files:
        raise PrometheusError(f"{path}: no *.yml files")
    merged: dict[str, Any] = {"scrape_configs": []}
    for name in files:
        try:
            with open(name, encoding="utf-8") as f:
                config = _parse(f.read(), name)
        except (OSError, UnicodeDecodeError) as e:
            raise PrometheusError(f"{name}: {e}") from None
        merged.setdefault("global", config.get("global"))
        merged["scrape_configs"].extend(config.get("scrape_configs") or [])
    return merged


def fetch(server: ServerSpec) -> dict[str, Any]:
    return fetch_url(server) if server.url else fetch_file(server)
