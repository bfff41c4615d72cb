"""Throwaway Consul and Prometheus servers on loopback, for the demo and the test suite.

Binaries come from $FIELDSYNC_SERVERS_BIN, the checkout's .cache/servers/bin (scripts/install-servers.sh fills it),
or PATH. Each server gets its own directory and log file, and is stopped by `stop()` or on exit of a `with` block.

Ports cannot race: Prometheus binds port 0 and the port it got is read back from its log. Consul cannot bind port
0, so its ports are reserved below the kernel's ephemeral range (which the kernel never hands out for a bind to
port 0 or an outgoing connection), each held by a lock file that other test processes respect; should another
program still hold one, the agent is started again on other ports.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

_CHECKOUT_BIN = Path(__file__).resolve().parents[2] / ".cache" / "servers" / "bin"


_LOCK_DIR = Path(tempfile.gettempdir()) / "fieldsync-ports"


def _below_ephemeral_range() -> range:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return range(10000, max(low, 10001))


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class PortReservation:
    """Ports reserved for one server until `release()`: each one held by an exclusive lock on a file."""

    def __init__(self, count: int) -> None:
        _LOCK_DIR.mkdir(exist_ok=True)
        self.ports: list[int] = []
        self._locks: list[int] = []
        candidates = _below_ephemeral_range()
        while len(self.ports) < count:
            port = random.choice(candidates)
            fd = os.open(_LOCK_DIR / f"{port}.lock", os.O_CREAT | os.O_RDWR, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            if port in self.ports or not _is_free(port):
                os.close(fd)
                continue
            self.ports.append(port)
            self._locks.append(fd)

    def release(self) -> None:
        for fd in self._locks:
            os.close(fd)
        self._locks.clear()


@contextlib.contextmanager
def refused_address() -> Iterator[str]:
    """host:port where nothing listens, held so that nothing can start listening there while in use."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, never listening: a connection is refused
        yield f"127.0.0.1:{s.getsockname()[1]}"


def find_binary(name: str) -> str:
    for directory in (os.environ.get("FIELDSYNC_SERVERS_BIN"), str(_CHECKOUT_BIN)):
        if directory and os.access(os.path.join(directory, name), os.X_OK):
            return os.path.join(directory, name)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"no '{name}' binary: run scripts/install-servers.sh")
    return found


def _get(url: str, method: str = "GET", timeout: float = 2.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class ServerExited(RuntimeError):
    """The server process ended before it was ready."""


class LocalServer:
    """A server process with a readiness probe; it can be stopped and started again on the same ports and
    directory."""

    name = "server"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"{self.name}.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_start = 0  # where this run's lines begin in the log

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout: float = 30.0) -> LocalServer:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - held open for the process's lifetime
        self._log_start = self._log.tell()
        self._process = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ServerExited(f"{self.name} exited with {self._process.returncode}; see {self.log_path}:\n"
                                   + self.log_text()[-3000:])
            try:
                if self.ready():
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s; see {self.log_path}")

    def pause(self, paused: bool = True) -> None:
        """Freeze the process (SIGSTOP), or let it go on (SIGCONT): it holds its connections and answers nothing."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP if paused else signal.SIGCONT)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self.pause(False)  # a frozen process takes no SIGTERM
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_tls_files(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate (for server.dc1.consul, localhost and 127.0.0.1) and a client certificate,
    made by the consul CLI itself, offline."""
    directory.mkdir(parents=True, exist_ok=True)
    consul = find_binary("consul")
    for args in (["tls", "ca", "create"], ["tls", "cert", "create", "-server", "-dc", "dc1"],
                 ["tls", "cert", "create", "-client", "-dc", "dc1"]):
        subprocess.run([consul, *args], cwd=directory, check=True, capture_output=True, timeout=60)
    return {"ca": directory / "consul-agent-ca.pem", "cert": directory / "dc1-server-consul-0.pem",
            "key": directory / "dc1-server-consul-0-key.pem", "client_cert": directory / "dc1-client-consul-0.pem",
            "client_key": directory / "dc1-client-consul-0-key.pem"}


class ConsulAgent(LocalServer):
    """A single-node Consul. dev=True keeps KV in memory; dev=False keeps it in workdir across restarts. With
    `tls` (files from make_tls_files) it also serves HTTPS, asking for a client certificate when
    `verify_incoming` is set. One of `bootstrap_expect` servers (dev=False) joins the others at `join` (ConsulCluster).
    """

    name = "consul"

    _PORTS = ("http", "https", "serf_lan", "serf_wan", "server")

    def __init__(self, workdir: Path, dev: bool = True, acl_master_token: str | None = None,
                 tls: dict[str, Path] | None = None, verify_incoming: bool = False, bootstrap_expect: int = 1) -> None:
        super().__init__(workdir)
        self.dev, self.bootstrap_expect = dev, bootstrap_expect
        self.join: tuple[str, ...] = ()  # serf addresses of the other servers
        self.acl_master_token = acl_master_token
        self.tls, self.verify_incoming = tls, verify_incoming
        self._reserve()

    def _reserve(self) -> None:
        self._reservation = PortReservation(len(self._PORTS))
        self.ports = dict(zip(self._PORTS, self._reservation.ports, strict=True))
        self.http_addr = f"127.0.0.1:{self.ports['http']}"
        self.https_addr = f"127.0.0.1:{self.ports['https']}"

    def start(self, timeout: float = 30.0) -> LocalServer:
        for _ in range(3):
            try:
                return super().start(timeout)
            except ServerExited:
                if "address already in use" not in self.log_text():
                    raise
                self._reservation.release()  # another program holds one of them: take others
                self._reserve()
        return super().start(timeout)

    def stop(self) -> None:
        super().stop()
        self._reservation.release()

    def command(self) -> list[str]:
        https = self.ports["https"] if self.tls else -1
        hcl = f"ports {{ dns = -1, grpc = -1, https = {https} }}"
        if self.tls:
            hcl += (f' ca_file = "{self.tls["ca"]}" cert_file = "{self.tls["cert"]}" key_file = "{self.tls["key"]}"'
                    f' verify_incoming_https = {str(self.verify_incoming).lower()}')
        if self.acl_master_token:
            hcl += (f' acl {{ enabled = true, default_policy = "deny", '
                    f'tokens {{ master = "{self.acl_master_token}" }} }}')
        mode = ["-dev"] if self.dev else ["-server", f"-bootstrap-expect={self.bootstrap_expect}",
                                          f"-data-dir={self.workdir / 'data'}",
                                          *(f"-retry-join={address}" for address in self.join)]
        if self.bootstrap_expect > 1:
            hcl += " performance { raft_multiplier = 1 }"  # elections in seconds, as in production
        return [find_binary("consul"), "agent", *mode, "-bind=127.0.0.1", "-client=127.0.0.1",
                "-log-level=warn", "-ui=false", f"-node=fieldsync-{self.ports['http']}", f"-hcl={hcl}",
                *(f"-{k.replace('_', '-')}-port={v}" for k, v in self.ports.items() if k != "https")]

    def ready(self) -> bool:
        status, body = _get(f"http://{self.http_addr}/v1/status/leader")
        if status != 200 or body.strip() in (b'""', b""):
            return False
        # A fresh server elects itself before it can serve KV writes; probe a consistent read.
        return _get(f"http://{self.http_addr}/v1/kv/fieldsync-ready-probe?consistent")[0] in (403, 404)


class ConsulCluster:
    """`size` Consul servers in one datacenter, started together (none is ready before they have elected a
    leader), as consul-k8s runs them: clients reach them through one address that spreads requests over them
    (RecordingProxy with every server's http_addr)."""

    def __init__(self, workdir: Path, size: int = 3) -> None:
        self.servers = [ConsulAgent(workdir / f"server{n}", dev=False, bootstrap_expect=size) for n in range(size)]
        for server in self.servers:
            server.join = tuple(f"127.0.0.1:{s.ports['serf_lan']}" for s in self.servers if s is not server)

    def start(self, timeout: float = 60.0) -> ConsulCluster:
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(len(self.servers)) as pool:
            started = [pool.submit(s.start, timeout) for s in self.servers]
        failed = [f.exception() for f in started if f.exception() is not None]
        if failed:
            self.stop()
            raise failed[0]  # type: ignore[misc]
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def __enter__(self) -> ConsulCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Prometheus(LocalServer):
    """Prometheus with a given prometheus.yml; `reload()` applies an edited config like an operator would."""

    name = "prometheus"

    _LISTENING = re.compile(r'msg="Listening on" address=127\.0\.0\.1:(\d+)')

    def __init__(self, workdir: Path, config: str) -> None:
        super().__init__(workdir)
        self.port = 0  # Prometheus picks it; a restart keeps it
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(config, encoding="utf-8")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [find_binary("prometheus"), f"--config.file={self.config_path}",
                f"--web.listen-address=127.0.0.1:{self.port}", f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                "--web.enable-lifecycle", "--log.level=info"]

    def ready(self) -> bool:
        if not self.port:
            found = self._LISTENING.search(self.log_text()[self._log_start:])
            if found is None:
                return False
            self.port = int(found.group(1))
        return _get(f"{self.url}/-/ready")[0] == 200

    def reload(self, config: str) -> None:
        self.config_path.write_text(config, encoding="utf-8")
        status, body = _get(f"{self.url}/-/reload", method="POST", timeout=10)
        if status != 200:
            raise RuntimeError(f"prometheus reload failed ({status}): {body[:500]!r}")


class RecordingProxy:
    """An HTTP proxy on a free loopback port that passes every request on to `upstream` (host:port; several: each
    request to the next, as a load balancer would) and records it: (time, method, path, query). Shows what a client
    asks of Consul, blocking queries included. While `blackhole` is set, a request gets no answer at all (a network
    partition): it is held, then dropped."""

    def __init__(self, upstream: str | Sequence[str]) -> None:
        import http.client
        import itertools
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs, urlsplit

        self.requests: list[tuple[float, str, str, dict[str, list[str]]]] = []
        self.blackhole = threading.Event()
        recorded, blackhole = self.requests, self.blackhole
        upstreams, turns = [upstream] if isinstance(upstream, str) else list(upstream), itertools.count()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = urlsplit(self.path)
                recorded.append((time.monotonic(), self.command, parts.path, parse_qs(parts.query)))
                held = time.monotonic()
                while blackhole.is_set() and time.monotonic() - held < 600:
                    time.sleep(0.1)
                if time.monotonic() - held > 0.05:  # it was held: the client gave up long ago
                    self.close_connection = True
                    return
                connection = http.client.HTTPConnection(upstreams[next(turns) % len(upstreams)], timeout=None)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                    connection.request(self.command, self.path, body=body or None, headers=headers)
                    answer = connection.getresponse()
                    data = answer.read()
                except OSError:
                    self.send_error(502)
                    return
                finally:
                    connection.close()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the client went away (a blocking query of a stopped client)
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = _forward

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def since(self, start: float) -> list[tuple[str, str, dict[str, list[str]]]]:
        return [(method, path, query) for at, method, path, query in list(self.requests) if at >= start]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
