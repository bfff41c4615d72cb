"""The HTTP endpoint of `fieldsync serve`, on waitress (a maintained WSGI server, chosen for its limits): it hands
each request to a route and writes back what the route answers. Routing and answers live in the use case; this
module only speaks HTTP.

Its limits hold against a hostile client: a body over `max_body` is answered 413 unread (bodies over 512 KiB are
buffered on disk while read, not in memory); a connection that sends nothing for `idle` seconds is closed; at most
`connections` are open at once (more wait in the listen backlog); requests are answered by `threads` threads, and
connections are read by one event loop, so idle connections hold no thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from ..errors import UsageError


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Limits:
    max_body: int  # bytes
    idle: int = 8  # seconds a connection may send nothing (waitress checks every second)
    connections: int = 128  # open at once
    threads: int = 4  # answering at once


Route = Callable[[Request], Answer]


def parse_listen(value: str) -> tuple[str, int]:
    """HOST:PORT (an IPv6 host in brackets); port 0 picks a free one."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--listen (or FIELDSYNC_LISTEN) {value!r}: give HOST:PORT, e.g. 127.0.0.1:9469 or "
                         "0.0.0.0:9469")
    return host.strip("[]") or "0.0.0.0", int(port)


def _app(route: Route) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        request = Request(environ["REQUEST_METHOD"], environ.get("PATH_INFO") or "/", headers,
                          environ["wsgi.input"].read(length) if length else b"")
        try:
            answer = route(request)
        except Exception as e:  # a bug in a route: an answer, never a dropped connection
            answer = Answer(500, f"internal error: {type(e).__name__}: {e}\n")
        data = answer.body.encode("utf-8")
        start_response(f"{answer.status} {HTTPStatus(answer.status).phrase}",
                       [("Content-Type", answer.content_type), ("Content-Length", str(len(data))), *answer.headers])
        return [data]

    return app


class Server:
    """Serving in a daemon thread until `stop()`."""

    def __init__(self, listen: tuple[str, int], route: Route, limits: Limits) -> None:
        from waitress.server import create_server

        quiet = logging.getLogger("waitress")  # its warnings (a queue that grows under a flood) are not the log's
        quiet.addHandler(logging.NullHandler())
        quiet.propagate = False
        try:
            self._server = create_server(
                _app(route), host=listen[0], port=listen[1], threads=limits.threads,
                connection_limit=limits.connections, channel_timeout=limits.idle, cleanup_interval=1,
                max_request_body_size=limits.max_body, ident="fieldsync", expose_tracebacks=False)
        except OSError as e:
            raise UsageError(f"--listen {listen[0]}:{listen[1]}: {e.strerror}") from None
        self.address: tuple[str, int] = (self._server.effective_host, int(self._server.effective_port))
        threading.Thread(target=self._server.run, name="http", daemon=True).start()

    def stop(self) -> None:
        """Stop taking connections, close those open, and let the answering threads go."""
        self._server.close()
        for channel in list(self._server._map.values()):  # noqa: SLF001 - waitress keeps its channels there
            channel.close()
        self._server.task_dispatcher.shutdown(timeout=1)


def start(listen: tuple[str, int], route: Route, limits: Limits) -> Server:
    return Server(listen, route, limits)
