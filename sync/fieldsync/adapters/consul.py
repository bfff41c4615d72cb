"""Consul KV as fieldsync uses it: settings from CONSUL_* variables, read, check-and-set, a session lock."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ..errors import FieldsyncError, UsageError

T = TypeVar("T")
SESSION_TTL = 15  # seconds; a killed sync's lock frees itself within about twice this


@dataclass
class HeldLock:
    """A lock held through a session; `release_error` says why ending the session failed, if it did (the session
    then expires by itself within its TTL)."""

    key: str
    release_error: str | None = None


@dataclass(frozen=True)
class ConsulSettings:
    """How to reach Consul, resolved the way the consul CLI does it."""

    address: str = "127.0.0.1:8500"
    scheme: str = "http"
    token: str | None = None
    verify: bool | str = True
    cert: tuple[str, str] | None = None

    @classmethod
    def resolve(cls, env: Mapping[str, str], address: str | None = None,
                token_file: str | None = None) -> ConsulSettings:
        """From CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN(_FILE), CONSUL_CACERT, CONSUL_CLIENT_CERT/KEY,
        CONSUL_HTTP_SSL(_VERIFY); the address and token file given as flags win."""
        raw = address or env.get("CONSUL_HTTP_ADDR") or cls.address
        parts = urlsplit(raw if "://" in raw else f"//{raw}")
        if not parts.hostname:
            raise UsageError(f"Consul address {raw!r} is not host:port or scheme://host:port")
        ssl = env.get("CONSUL_HTTP_SSL", "").lower() == "true"
        scheme = parts.scheme or ("https" if ssl else "http")
        token_path = token_file or env.get("CONSUL_HTTP_TOKEN_FILE")
        token = env.get("CONSUL_HTTP_TOKEN") or None
        if token_path:
            try:
                with open(token_path, encoding="utf-8") as f:
                    token = f.read().strip()
            except OSError as e:
                raise UsageError(f"Consul token file {token_path}: {e.strerror}") from None
        verify: bool | str = env.get("CONSUL_CACERT") or True
        if env.get("CONSUL_HTTP_SSL_VERIFY", "").lower() == "false":
            verify = False
        cert = (env["CONSUL_CLIENT_CERT"], env["CONSUL_CLIENT_KEY"]) \
            if env.get("CONSUL_CLIENT_CERT") and env.get("CONSUL_CLIENT_KEY") else None
        port = parts.port or (443 if scheme == "https" else 8500)
        return cls(f"{parts.hostname}:{port}", scheme, token, verify, cert)


class ConsulKV:
    """The few Consul calls sync needs, each turning failures into one clear error."""

    def __init__(self, settings: ConsulSettings) -> None:
        import consul

        host, port = settings.address.rsplit(":", 1)
        self.settings = settings
        self.client = consul.Consul(host=host, port=int(port), scheme=settings.scheme, verify=settings.verify,
                                    cert=settings.cert)
        self.client.token = settings.token  # py-consul lets CONSUL_HTTP_TOKEN win over an explicit token

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        import consul
        import requests

        try:
            return fn(*args, **kwargs)
        except consul.ACLPermissionDenied:
            raise FieldsyncError(f"Consul denied {what}: the token lacks the permission") from None
        except requests.exceptions.RequestException as e:
            raise FieldsyncError(f"cannot reach Consul at {self.settings.scheme}://{self.settings.address} "
                                 f"({what}): {type(e).__name__}") from None
        except consul.ConsulException as e:
            raise FieldsyncError(f"Consul error ({what}): {e}") from None

    def read(self, key: str) -> tuple[bytes | None, int]:
        """(value, ModifyIndex); (None, 0) when the key is absent."""
        _, item = self._call(f"reading {key}", self.client.kv.get, key)
        return (None, 0) if item is None else (item["Value"] or b"", int(item["ModifyIndex"]))

    def write_cas(self, key: str, value: bytes, index: int) -> bool:
        """Write only if the key's ModifyIndex is still `index` (0: only if absent)."""
        return bool(self._call(f"writing {key}", self.client.kv.put, key, value, cas=index))

    @contextmanager
    def lock(self, key: str, timeout: float) -> Iterator[HeldLock]:
        """Hold `key` through a TTL session (renewed while held, deleted on release or expiry). A failure to end the
        session never replaces the outcome of the block, nor its error: it is recorded in the HeldLock."""
        holder = json.dumps({"holder": f"{socket.gethostname()}:{os.getpid()}", "since": time.time()})
        held = HeldLock(key)
        session = self._call("creating a session", self.client.session.create, name=f"fieldsync sync {key}",
                             ttl=SESSION_TTL, behavior="delete", lock_delay=0)
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(SESSION_TTL / 3):
                with contextlib.suppress(Exception):  # a missed renewal: the next one, or the CAS write, will tell
                    self.client.session.renew(session)

        renewer = threading.Thread(target=renew, daemon=True)
        renewer.start()
        try:
            deadline = time.monotonic() + timeout
            index = None
            while not self._call(f"locking {key}", self.client.kv.put, key, holder, acquire=session):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise FieldsyncError(f"another sync holds {key} for more than {timeout:g} s; nothing written")
                wait = f"{max(1, min(5, int(remaining)))}s"
                index, _ = self._call(f"waiting for {key}", self.client.kv.get, key, index=index, wait=wait)
            yield held
        finally:
            stop.set()
            try:
                self._call("ending the session", self.client.session.destroy, session)
            except FieldsyncError as e:
                held.release_error = str(e)
