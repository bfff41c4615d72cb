"""A Prometheus server's running configuration, as text: over its HTTP API, or from files for offline use.

A server's read in a run has one deadline for connecting, every attempt, the headers and the whole body (a server
that dribbles its answer cannot hold a sync past it), a size cap, and redirects followed by hand: credentials go only
to the host they were meant for, and https never redirects to http (as Go's client, which Prometheus and the consul
CLI use, behaves).
"""

from __future__ import annotations

import base64
import glob
import http.client
import json
import os
import ssl
import time
from urllib.parse import urljoin, urlsplit

from ..model import ServerSpec

ConfigTexts = list[tuple[str, str]]  # (where it was read, prometheus.yml text), in reading order
MAX_REDIRECTS = 5
CHUNK = 64 * 1024


class PrometheusError(Exception):
    """The server's configuration could not be read."""


class _Retryable(PrometheusError):
    """A failure worth another attempt: connection refused or reset, a timeout, a 5xx answer."""


def _read_secret(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError as e:
        raise PrometheusError(f"cannot read {path}: {e.strerror}") from None


def _credentials(server: ServerSpec) -> dict[str, str]:
    if server.bearer_token_file:
        return {"Authorization": f"Bearer {_read_secret(server.bearer_token_file)}"}
    if server.username is not None:
        password = _read_secret(server.password_file) if server.password_file else ""
        return {"Authorization": "Basic " + base64.b64encode(f"{server.username}:{password}".encode()).decode()}
    return {}


def redirect_target(current: str, location: str) -> str:
    """The URL a redirect leads to; https to http is refused."""
    target = urljoin(current, location)
    if urlsplit(current).scheme == "https" and urlsplit(target).scheme != "https":
        raise PrometheusError(f"{current}: refused a redirect from https to http ({target})")
    return target


def _same_host(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port) == (pb.scheme, pb.hostname, pb.port)


def _get(url: str, headers: dict[str, str], server: ServerSpec, deadline: float) -> tuple[int, str, bytearray]:
    """(status, Location, body) of one GET, all of it within the deadline and the size cap."""
    too_slow = f"no complete answer within {server.timeout:g} s"

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _Retryable(too_slow)
        return left

    parts = urlsplit(url)
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=server.ca_file)
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=remaining(), context=context)
    else:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=remaining())
    try:
        conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""),
                     headers={"Accept": "application/json", **headers})
        sock = conn.sock  # the response takes it over (and conn.sock becomes None) when the server closes after it
        assert sock is not None
        sock.settimeout(remaining())
        response = conn.getresponse()
        body = bytearray()
        while True:
            sock.settimeout(remaining())
            chunk = response.read1(CHUNK)
            if not chunk:
                break
            body += chunk
            if len(body) > server.max_bytes:
                raise PrometheusError(f"answer larger than {server.max_bytes / 1024 / 1024:g} MiB (max_bytes); "
                                      "is this a Prometheus?")
        return response.status, response.getheader("Location") or "", body  # not copied: json reads a bytearray
    except TimeoutError:
        raise _Retryable(too_slow) from None
    except ssl.SSLError as e:
        raise PrometheusError(f"TLS: {e.reason or e}") from None
    except (ConnectionError, http.client.HTTPException, OSError) as e:
        raise _Retryable(str(getattr(e, "strerror", None) or e)) from None
    finally:
        conn.close()


def _attempt(server: ServerSpec, url: str, deadline: float) -> str:
    credentials = _credentials(server)
    current = url.rstrip("/") + "/api/v1/status/config"
    for _ in range(MAX_REDIRECTS + 1):
        headers = credentials if _same_host(url, current) else {}  # credentials stay with their own host
        status, location, body = _get(current, headers, server, deadline)
        if status in (301, 302, 303, 307, 308) and location:
            current = redirect_target(current, location)
            continue
        if status >= 500:
            raise _Retryable(f"HTTP {status}")
        if status != 200:
            raise PrometheusError(f"HTTP {status}")
        try:
            answer = json.loads(body)
            if answer.get("status") != "success":
                raise PrometheusError(f"API answered {answer.get('status')}: {answer.get('error')}")
            text = answer["data"]["yaml"]
            if not isinstance(text, str):
                raise TypeError
        except (ValueError, KeyError, TypeError, AttributeError):
            raise PrometheusError("answer is not a Prometheus status/config response") from None
        return text
    raise PrometheusError(f"more than {MAX_REDIRECTS} redirects")


def read_url(server: ServerSpec, url: str) -> ConfigTexts:
    """GET /api/v1/status/config within one deadline (`timeout`) for everything this run asks of the server:
    connecting, every attempt with its whole answer, and the pauses between them. Connection errors and 5xx answers
    are tried again (`retries` times at most) while the deadline leaves time for it."""
    deadline = time.monotonic() + server.timeout
    for attempt in range(1, server.retries + 2):
        try:
            return [(url, _attempt(server, url, deadline))]
        except _Retryable as e:
            pause = 0.2 * 2 ** (attempt - 1)
            if attempt > server.retries or time.monotonic() + pause >= deadline:
                raise PrometheusError(f"{url}: {e} (after {attempt} attempt{'s' if attempt > 1 else ''})") from None
        except PrometheusError as e:
            raise PrometheusError(f"{url}: {e}") from None
        time.sleep(pause)
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
