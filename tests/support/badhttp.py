"""Real HTTP servers on loopback that answer the way a broken or hostile Prometheus (or a proxy in front of one)
might: slowly, hugely, or with redirects. Each records the requests it received."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Handler = Callable[[BaseHTTPRequestHandler], None]


@contextmanager
def serving(handle: Handler) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """(base URL, the headers of every request received) of a server answering with `handle`."""
    seen: list[dict[str, str]] = []

    class _Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            seen.append(dict(self.headers))
            handle(self)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def dribble(seconds: float) -> Handler:
    """Answers one byte a second (a body that never ends within `seconds`)."""
    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.end_headers()
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                h.wfile.write(b" ")
                h.wfile.flush()
                time.sleep(1)
        except OSError:  # the client gave up
            pass
    return handle


def huge(megabytes: int) -> Handler:
    """Answers `megabytes` MB of JSON whitespace, generated as it is sent."""
    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(megabytes * 1024 * 1024))
        h.end_headers()
        chunk = b" " * (1024 * 1024)
        try:
            for _ in range(megabytes):
                h.wfile.write(chunk)
        except OSError:
            pass
    return handle


def redirect_to(location: str) -> Handler:
    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(302)
        h.send_header("Location", location)
        h.end_headers()
    return handle


def config_of(yaml_text: str) -> Handler:
    """Answers /api/v1/status/config with this configuration, as Prometheus does."""
    body = json.dumps({"status": "success", "data": {"yaml": yaml_text}}).encode()

    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
    return handle


config_answer = config_of("scrape_configs: []\n")  # a Prometheus with no jobs


def failing_first(times: int, then: Handler) -> Handler:
    """Answers 503 to the first `times` requests, then as `then` does."""
    answered = [0]

    def handle(h: BaseHTTPRequestHandler) -> None:
        answered[0] += 1
        if answered[0] <= times:
            h.send_response(503)
            h.send_header("Content-Length", "0")
            h.end_headers()
        else:
            then(h)
    return handle


def silent(seconds: float) -> Handler:
    """Takes the request and answers nothing for `seconds` (a hung Prometheus, or a proxy that holds on)."""
    def handle(h: BaseHTTPRequestHandler) -> None:
        time.sleep(seconds)
    return handle
