"""The HTTP endpoint of `fieldsync serve`: a small threaded server that hands each request to a route and writes
back what the route answers. Routing and answers live in the use case; this module only speaks HTTP."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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


Route = Callable[[Request], Answer]


def parse_listen(value: str) -> tuple[str, int]:
    """HOST:PORT (an IPv6 host in brackets); port 0 picks a free one."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--listen {value!r}: give HOST:PORT, e.g. 127.0.0.1:9469 or 0.0.0.0:9469")
    return host.strip("[]") or "0.0.0.0", int(port)


def start(listen: tuple[str, int], route: Route, max_body: int) -> ThreadingHTTPServer:
    """Serve in a daemon thread until `shutdown()`; a body over `max_body` bytes is answered 413 unread."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "fieldsync"

        def _handle(self) -> None:
            length = self.headers.get("Content-Length", "0")
            if not length.isdigit() or int(length) > max_body:
                self._send(Answer(413, f"the body must be at most {max_body} bytes\n"), close=True)
                return
            body = self.rfile.read(int(length))
            path = self.path.split("?", 1)[0]
            try:
                answer = route(Request(self.command, path, {k.lower(): v for k, v in self.headers.items()}, body))
            except Exception as e:  # a bug in a route: an answer, never a dropped connection
                answer = Answer(500, f"internal error: {type(e).__name__}: {e}\n")
            self._send(answer)

        def _send(self, answer: Answer, close: bool = False) -> None:
            data = answer.body.encode("utf-8")
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(data)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _handle

        def log_message(self, format: str, *args: object) -> None:  # the service logs what matters itself
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 1024  # the listen backlog: a burst of deliveries must not meet connection resets

        def handle_error(self, request: object, client_address: object) -> None:
            pass  # a client that went away mid-answer: nothing to report, and never a traceback

    try:
        server = Server(listen, Handler)
    except OSError as e:
        raise UsageError(f"--listen {listen[0]}:{listen[1]}: {e.strerror}") from None
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server
