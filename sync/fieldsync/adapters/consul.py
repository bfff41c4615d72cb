"""Consul KV as fieldsync uses it: settings from CONSUL_* variables, read, check-and-set, a session lock."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlsplit

from requests.adapters import HTTPAdapter

from ..errors import FieldsyncError, UsageError

T = TypeVar("T")
SESSION_TTL = 10  # seconds, Consul's minimum: a killed sync's lock frees itself after twice this (Consul's grace)
CALL_DEADLINE = 3.0  # seconds any call may take (a blocking query: beyond its wait), well below the session TTL
REPLICA_SERVICE = "fieldsync-replica"  # the service `serve` replicas register, whose checks keep their sessions alive


@dataclass
class HeldLock:
    """A lock held through a session; `release_error` says why ending the session failed, if it did (the session
    then expires by itself within its TTL)."""

    key: str
    release_error: str | None = None


class Watched(NamedTuple):
    """What a blocking query saw: the index to pass next, and the key's value, ModifyIndex (0: absent) and holder."""

    next_index: int
    value: bytes | None
    modify_index: int
    session: str | None


_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def _go_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    """A boolean variable read as Go's strconv.ParseBool reads it, as the consul CLI does."""
    value = env.get(name, "")
    if value == "":
        return default
    if value in _GO_TRUE or value in _GO_FALSE:
        return value in _GO_TRUE
    raise UsageError(f"{name}={value!r} is not a boolean (1, t, true, TRUE, 0, f, false, FALSE)")


def _existing(env: Mapping[str, str], name: str, directory: bool = False) -> str | None:
    path = env.get(name) or None
    if path is not None and not (os.path.isdir(path) if directory else os.path.isfile(path)):
        raise UsageError(f"{name}={path}: no such {'directory' if directory else 'file'}")
    return path


@dataclass(frozen=True)
class ConsulSettings:
    """How to reach Consul, resolved the way the consul CLI does it."""

    address: str = "127.0.0.1:8500"
    scheme: str = "http"
    token: str | None = None
    verify: bool | str = True
    cert: tuple[str, str] | None = None
    tls_server_name: str | None = None
    auth: tuple[str, str] | None = None
    namespace: str | None = None

    @classmethod
    def resolve_all(cls, env: Mapping[str, str], address: str | None = None, token_file: str | None = None,
                    addresses: Sequence[str] = ()) -> list[ConsulSettings]:
        """The agents to try, in order: --consul-addr, else CONSUL_HTTP_ADDR, else the config's consul.addresses,
        else the default."""
        if address or env.get("CONSUL_HTTP_ADDR") or not addresses:
            return [cls.resolve(env, address, token_file)]
        return [cls.resolve(env, a, token_file, "consul.addresses") for a in addresses]

    @classmethod
    def resolve(cls, env: Mapping[str, str], address: str | None = None, token_file: str | None = None,
                source: str = "--consul-addr") -> ConsulSettings:
        """From CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN(_FILE), CONSUL_HTTP_SSL(_VERIFY), CONSUL_CACERT, CONSUL_CAPATH,
        CONSUL_CLIENT_CERT/KEY, CONSUL_TLS_SERVER_NAME, CONSUL_HTTP_AUTH and CONSUL_NAMESPACE; the address and token
        file given as flags win."""
        where = source if address else "CONSUL_HTTP_ADDR"
        raw = address or env.get("CONSUL_HTTP_ADDR") or cls.address
        parts = urlsplit(raw if "://" in raw else f"//{raw}")
        try:
            port = parts.port
        except ValueError:
            raise UsageError(f"{where}={raw!r}: the port must be a number from 1 to 65535") from None
        if not parts.hostname or port == 0 or parts.scheme not in ("", "http", "https"):
            raise UsageError(f"{where}={raw!r}: not host:port or http(s)://host:port with a port from 1 to 65535")
        scheme = parts.scheme or ("https" if _go_bool(env, "CONSUL_HTTP_SSL", False) else "http")
        token = env.get("CONSUL_HTTP_TOKEN") or None
        token_path = token_file or env.get("CONSUL_HTTP_TOKEN_FILE")
        if token_path:
            try:
                with open(token_path, encoding="utf-8") as f:
                    token = f.read().strip() or token  # an empty file leaves the token as it was, as in Consul
            except OSError as e:
                raise UsageError(f"Consul token file {token_path}: {e.strerror}") from None
        verify: bool | str = _existing(env, "CONSUL_CACERT") or _existing(env, "CONSUL_CAPATH", directory=True) or True
        if not _go_bool(env, "CONSUL_HTTP_SSL_VERIFY", True):
            verify = False
        cert_file, key_file = _existing(env, "CONSUL_CLIENT_CERT"), _existing(env, "CONSUL_CLIENT_KEY")
        if bool(cert_file) != bool(key_file):
            missing = "CONSUL_CLIENT_KEY" if cert_file else "CONSUL_CLIENT_CERT"
            raise UsageError(f"a client certificate needs both CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY; {missing} "
                             "is not set")
        user, _, password = (env.get("CONSUL_HTTP_AUTH") or "").partition(":")
        return cls(f"{parts.hostname}:{port or (443 if scheme == 'https' else 8500)}", scheme, token, verify,
                   (cert_file, key_file) if cert_file and key_file else None, env.get("CONSUL_TLS_SERVER_NAME") or None,
                   (user, password) if user else None, env.get("CONSUL_NAMESPACE") or None)


def _tls_reason(error: str, agent: ConsulSettings) -> str:
    """What an SSL error means, in the words of the setting that fixes it."""
    name = agent.tls_server_name or agent.address.rsplit(":", 1)[0]
    if "certificate has expired" in error:
        return "Consul's certificate has expired (or is not valid yet); renew it"
    if "mismatch" in error or "doesn't match" in error or "not valid for" in error:
        return f"Consul's certificate is not valid for {name}; set CONSUL_TLS_SERVER_NAME to a name it holds"
    if "local issuer" in error or "self-signed" in error or "self signed" in error or "unknown ca" in error.lower():
        return "Consul's certificate is not signed by a CA you trust; set CONSUL_CACERT (or CONSUL_CAPATH)"
    if "certificate required" in error.lower() or "bad certificate" in error.lower() or "handshake" in error.lower():
        return ("Consul asks for a client certificate" + ("; set CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY"
                                                          if not agent.cert else " and refused the one given"))
    return error.rsplit("(Caused by ", 1)[-1].rstrip(")")


def holder_value() -> str:
    """What a lock holder writes into the key it holds: who, and since when."""
    return json.dumps({"holder": f"{socket.gethostname()}:{os.getpid()}", "since": time.time()})


def _holder_text(value: bytes | None) -> str:
    """Who holds a lock and since when, from the value a fieldsync lock holder wrote."""
    try:
        found = json.loads(value or b"")
        since = time.strftime("%H:%M:%S", time.localtime(float(found["since"])))
        return f"held by {found['holder']} since {since} ({time.time() - float(found['since']):.0f} s)"
    except (ValueError, TypeError, KeyError):
        return "held by another client"


class _ServerNameAdapter(HTTPAdapter):
    """Verifies Consul's certificate against CONSUL_TLS_SERVER_NAME rather than the address's host, and sends that
    name in the TLS handshake, as the consul CLI does."""

    def __init__(self, server_name: str) -> None:
        self.server_name = server_name
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, server_hostname=self.server_name, assert_hostname=self.server_name, **kwargs)


def _client(settings: ConsulSettings) -> Any:
    import consul

    host, port = settings.address.rsplit(":", 1)
    client = consul.Consul(host=host, port=int(port), scheme=settings.scheme, verify=settings.verify,
                           cert=settings.cert)
    client.token = settings.token  # py-consul lets CONSUL_HTTP_TOKEN win over an explicit token
    client.http.connections_timeout = CALL_DEADLINE
    session = client.http.session
    if settings.auth:
        session.auth = settings.auth
    if settings.namespace:
        session.headers["X-Consul-Namespace"] = settings.namespace
    if settings.tls_server_name:
        session.mount("https://", _ServerNameAdapter(settings.tls_server_name))
    return client


class ConsulKV:
    """The few Consul calls sync needs, each turning failures into one clear error. Given several agents, a call
    that cannot reach one goes to the next, in order, and stays with the first that answers."""

    def __init__(self, settings: ConsulSettings | Sequence[ConsulSettings]) -> None:
        self.agents = [settings] if isinstance(settings, ConsulSettings) else list(settings)
        self.clients = [_client(s) for s in self.agents]
        self.current = 0

    @property
    def settings(self) -> ConsulSettings:
        return self.agents[self.current]

    def set_deadline(self, seconds: float) -> None:
        """How long this client's next calls may take (the default: CALL_DEADLINE)."""
        for client in self.clients:
            client.http.connections_timeout = seconds

    @property
    def client(self) -> Any:
        return self.clients[self.current]

    def _call(self, what: str, call: Callable[[Any], T]) -> T:
        import consul
        import requests

        unreachable = []
        for offset in range(len(self.clients)):
            number = (self.current + offset) % len(self.clients)
            agent = self.agents[number]
            try:
                result = call(self.clients[number])
            except consul.ACLPermissionDenied:
                raise FieldsyncError(f"Consul denied {what}: the token lacks the permission") from None
            except requests.exceptions.SSLError as e:  # a setting to fix, not an agent to skip
                raise FieldsyncError(f"TLS with Consul at {agent.scheme}://{agent.address} ({what}): "
                                     f"{_tls_reason(str(e), agent)}") from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
                unreachable.append(f"{agent.scheme}://{agent.address} ({type(e).__name__})")
                continue
            except requests.exceptions.RequestException as e:
                raise FieldsyncError(f"Consul at {agent.scheme}://{agent.address} ({what}): "
                                     f"{type(e).__name__}") from None
            except consul.ConsulException as e:
                raise FieldsyncError(f"Consul error ({what}): {e}") from None
            self.current = number
            return result
        raise FieldsyncError(f"cannot reach Consul ({what}): {'; '.join(unreachable)}")

    def read(self, key: str) -> tuple[bytes | None, int]:
        """(value, ModifyIndex); (None, 0) when the key is absent."""
        _, item = self._call(f"reading {key}", lambda c: c.kv.get(key))
        return (None, 0) if item is None else (item["Value"] or b"", int(item["ModifyIndex"]))

    def write_cas(self, key: str, value: bytes, index: int) -> bool:
        """Write only if the key's ModifyIndex is still `index` (0: only if absent)."""
        return bool(self._call(f"writing {key}", lambda c: c.kv.put(key, value, cas=index)))

    def put(self, key: str, value: bytes) -> None:
        self._call(f"writing {key}", lambda c: c.kv.put(key, value))

    def watch(self, key: str, index: int, wait: float) -> Watched:
        """A blocking query: returns when `key` changes after `index` (0: at once), or after about `wait` seconds."""
        new_index, item = self._call(f"watching {key}", lambda c: c.kv.get(  # py-consul times out after wait + jitter
            key, index=index or None, wait=f"{max(1, int(wait))}s"))
        new_index = int(new_index or 0)
        if new_index < index:  # the index went back (a restored or new cluster): start over, as Consul advises
            new_index = 0
        if item is None:
            return Watched(new_index, None, 0, None)
        return Watched(new_index, item["Value"] or b"", int(item["ModifyIndex"]), item.get("Session"))

    def create_session(self, name: str, check: str | None = None) -> str:
        """A session deleting what it holds when it ends, with no lock delay. It lives while `check` (an ID on the
        agent that answers) and the agent itself are healthy; without a check, while it is renewed within Consul's
        shortest TTL (which Consul enforces at up to twice the TTL)."""
        if check is not None:
            return str(self._call("creating a session", lambda c: c.session.create(
                name=name, checks=["serfHealth", check], behavior="delete", lock_delay=0)))
        return str(self._call("creating a session", lambda c: c.session.create(
            name=name, ttl=SESSION_TTL, behavior="delete", lock_delay=0)))

    def register_check(self, service_id: str, port: int, meta: dict[str, str]) -> str:
        """Register an instance `service_id` of the service `fieldsync-replica` on the agent that answers, with a TTL
        check of SESSION_TTL seconds, passing now (Consul removes the instance a minute after the check fails);
        returns the check's ID. The check is passed after registering: an agent that already has it (registered
        before, restored after a restart) keeps its status, critical included, whatever the registration says."""
        check = f"service:{service_id}"
        self._call(f"registering the service {REPLICA_SERVICE}", lambda c: c.agent.service.register(
            REPLICA_SERVICE, service_id=service_id, port=port, meta=meta,
            check={"TTL": f"{SESSION_TTL}s", "DeregisterCriticalServiceAfter": "1m"}))
        self._call("passing the session's new check", lambda c: c.agent.check.ttl_pass(check))
        return check

    def pass_check(self, check: str) -> bool:
        """Mark a TTL check passing; False when the agent no longer has it (restarted, or another agent answers)."""
        import consul

        def passing(c: Any) -> bool:
            try:
                return bool(c.agent.check.ttl_pass(check))
            except consul.ConsulException as e:
                if "does not have associated TTL" in str(e) or "Unknown check" in str(e):
                    return False
                raise

        return self._call("passing the session's check", passing)

    def deregister(self, service_id: str) -> None:
        self._call(f"deregistering the service {REPLICA_SERVICE}", lambda c: c.agent.service.deregister(service_id))

    def renew_session(self, session: str) -> bool:
        """False when the session has ended (expired, destroyed, or lost with Consul's state)."""
        import consul

        def renew(c: Any) -> bool:
            try:
                return c.session.renew(session) is not None
            except consul.NotFound:
                return False

        return self._call("renewing the session", renew)

    def end_session(self, session: str) -> None:
        self._call("ending the session", lambda c: c.session.destroy(session))

    def acquire(self, key: str, value: str, session: str) -> bool:
        return bool(self._call(f"locking {key}", lambda c: c.kv.put(key, value, acquire=session)))

    @contextmanager
    def lock(self, key: str, timeout: float, notify: Callable[[str], None] = lambda line: None) -> Iterator[HeldLock]:
        """Hold `key` through a TTL session (renewed while held, deleted on release or expiry). Ctrl-C or SIGTERM at
        any point, a blocking call included, ends the session on the way out. A failure to end the session never
        replaces the outcome of the block, nor its error: it is recorded in the HeldLock. While another holds the
        key, `notify` is told who and since when."""
        holder = holder_value()
        held = HeldLock(key)
        session = self.create_session(f"fieldsync sync {key}")
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(SESSION_TTL / 3):
                with contextlib.suppress(Exception):  # a missed renewal: the next one, or the CAS write, will tell
                    self.renew_session(session)

        try:
            threading.Thread(target=renew, daemon=True).start()
            deadline = time.monotonic() + timeout
            index, told = 0, None
            while not self.acquire(key, holder, session):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise FieldsyncError(f"another sync holds {key} for more than {timeout:g} s; nothing written")
                seen = self.watch(key, index, min(5, remaining))
                index = seen.next_index
                if seen.value is not None and seen.value != told:
                    told = seen.value
                    notify(f"waiting for {key}: {_holder_text(told)}")
            yield held
        finally:
            stop.set()
            try:
                self.end_session(session)
            except FieldsyncError as e:
                held.release_error = str(e)
