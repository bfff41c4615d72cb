"""extract: what each Prometheus server yields, read from every server at once."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable

from ..adapters import prometheus
from ..adapters.cache import Decoded
from ..adapters.prometheus import ConfigTexts
from ..errors import FieldsyncError
from ..model import ServerSpec, ServerStatus
from ..rules import extraction
from ..rules.config import port_of
from .settings import require_servers

Fetch = Callable[[ServerSpec], ConfigTexts]
MAX_READERS = 32  # servers read at once
fetch: Fetch = prometheus.read_config
CONFIGS: Decoded[extraction.ServerConfig] = Decoded()  # each server's config, read again only when its text changes


def extract_one(server: ServerSpec, fetch: Fetch = fetch) -> ServerStatus:
    start = time.perf_counter()
    hostname, port = server.hostname or server.name, port_of(server.url)
    try:
        texts = fetch(server)
        config = CONFIGS.get(server.name, _fingerprint(texts), lambda: extraction.combine(texts))
    except Exception as e:  # any failure of one server is reported in its status, never raised
        elapsed = round((time.perf_counter() - start) * 1000)
        return ServerStatus(server.name, server.location, False, str(e) or type(e).__name__, elapsed,
                            hostname=hostname, port=port)
    elapsed = round((time.perf_counter() - start) * 1000)
    return ServerStatus(server.name, server.location, True, None, elapsed, config.external_labels, config.rules,
                        hostname=hostname, port=port, files_count=len(texts))


def _fingerprint(texts: ConfigTexts) -> bytes:
    """What a server answered, in 32 bytes: the memo compares this, and does not hold a text that may be megabytes."""
    digest = hashlib.sha256()
    for origin, text in texts:
        digest.update(f"{len(origin)}:{origin}{len(text)}:".encode())
        digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.digest()


def extract_all(servers: Iterable[ServerSpec], fetch: Fetch = fetch) -> list[ServerStatus]:
    """Extract from every server concurrently; statuses come back in the servers' order. The readers are daemon
    threads, so that a process that stops (serve on SIGTERM) never waits at exit for a server that hangs."""
    servers = list(servers)
    statuses: list[ServerStatus | None] = [None] * len(servers)
    slots = threading.BoundedSemaphore(MAX_READERS)

    def read(number: int, server: ServerSpec) -> None:
        with slots:
            statuses[number] = extract_one(server, fetch)

    readers = [threading.Thread(target=read, args=(n, s), name=f"extract {s.name}", daemon=True)
               for n, s in enumerate(servers)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    return [s for s in statuses if s is not None]


def require_answers(statuses: list[ServerStatus], consequence: str) -> None:
    """Stop when no server answered: nothing can be built from no configuration at all."""
    if not any(s.success for s in statuses):
        errors = "; ".join(f"{s.name}: {s.error}" for s in statuses)
        raise FieldsyncError(f"no Prometheus server answered, {consequence} ({errors})")


def extract(*, servers: Iterable[ServerSpec], fetch: Fetch = fetch) -> list[ServerStatus]:
    """The `extract` command: every server given, or a usage error when none is."""
    servers = list(servers)
    require_servers(servers)
    return extract_all(servers, fetch)
