"""A Prometheus server's running configuration, as text: over its HTTP API, or from files for offline use."""

from __future__ import annotations

import base64
import glob
import json
import os
import ssl
import time
import urllib.error
import urllib.request

from ..model import ServerSpec

ConfigTexts = list[tuple[str, str]]  # (where it was read, prometheus.yml text), in reading order


class PrometheusError(Exception):
    """The server's configuration could not be read."""


def _read_secret(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError as e:
        raise PrometheusError(f"cannot read {path}: {e.strerror}") from None


def _request(server: ServerSpec, url: str) -> urllib.request.Request:
    request = urllib.request.Request(url.rstrip("/") + "/api/v1/status/config", headers={"Accept": "application/json"})
    if server.username is not None:
        password = _read_secret(server.password_file) if server.password_file else ""
        token = base64.b64encode(f"{server.username}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    if server.bearer_token_file:
        request.add_header("Authorization", f"Bearer {_read_secret(server.bearer_token_file)}")
    return request


def read_url(server: ServerSpec, url: str) -> ConfigTexts:
    """GET /api/v1/status/config; connection errors and 5xx answers are retried with backoff."""
    request = _request(server, url)
    context = ssl.create_default_context(cafile=server.ca_file) if server.ca_file else None
    for attempt in range(server.retries + 1):
        try:
            with urllib.request.urlopen(request, timeout=server.timeout, context=context) as response:
                body = json.load(response)
            if body.get("status") != "success":
                raise PrometheusError(f"{url}: API answered {body.get('status')}: {body.get('error')}")
            text = body["data"]["yaml"]
            if not isinstance(text, str):
                raise TypeError
            return [(url, text)]
        except urllib.error.HTTPError as e:
            if e.code < 500 or attempt == server.retries:
                raise PrometheusError(f"{url}: HTTP {e.code} {e.reason}") from None
        except (urllib.error.URLError, OSError) as e:
            if attempt == server.retries:
                reason = getattr(e, "reason", e)
                raise PrometheusError(f"{url}: {reason} (after {attempt + 1} attempts)") from None
        except (ValueError, KeyError, TypeError, AttributeError):
            raise PrometheusError(f"{url}: answer is not a Prometheus status/config response") from None
        time.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable")


def read_files(path: str) -> ConfigTexts:
    """A prometheus.yml, or every *.yml/*.yaml of a directory in name order."""
    files = sorted(glob.glob(os.path.join(path, "*.yml")) + glob.glob(os.path.join(path, "*.yaml"))) \
        if os.path.isdir(path) else [path]
    if not files:
        raise PrometheusError(f"{path}: no *.yml files")
    texts = []
    for name in files:
        try:
            with open(name, encoding="utf-8") as f:
                texts.append((name, f.read()))
        except (OSError, UnicodeDecodeError) as e:
            raise PrometheusError(f"{name}: {e}") from None
    return texts


def read_config(server: ServerSpec) -> ConfigTexts:
    return read_url(server, server.url) if server.url else read_files(server.file or "")
