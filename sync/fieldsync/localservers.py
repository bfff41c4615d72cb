"""Throwaway Consul and Prometheus servers on loopback, for the demo and the test suite.

Binaries come from $FIELDSYNC_SERVERS_BIN, the checkout's .cache/servers/bin (scripts/install-servers.sh fills it),
or PATH. Each server gets free ports, its own directory and log file, and is stopped by `stop()` or on exit of a
`with` block.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

_CHECKOUT_BIN = Path(__file__).resolve().parents[2] / ".cache" / "servers" / "bin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


class LocalServer:
    """A server process with a readiness probe; restartable on the same ports and directory."""

    name = "server"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"{self.name}.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self, timeout: float = 30.0) -> LocalServer:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - held open for the process's lifetime
        self._process = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self._process.returncode}; see {self.log_path}:\n"
                                   + self.log_path.read_text(errors="replace")[-3000:])
            try:
                if self.ready():
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s; see {self.log_path}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
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

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ConsulAgent(LocalServer):
    """A single-node Consul. dev=True keeps KV in memory; dev=False keeps it in workdir across restarts."""

    name = "consul"

    def __init__(self, workdir: Path, dev: bool = True, acl_master_token: str | None = None) -> None:
        super().__init__(workdir)
        self.dev = dev
        self.acl_master_token = acl_master_token
        self.ports = {k: free_port() for k in ("http", "serf_lan", "serf_wan", "server")}
        self.http_addr = f"127.0.0.1:{self.ports['http']}"

    def command(self) -> list[str]:
        hcl = "ports { dns = -1, grpc = -1 }"
        if self.acl_master_token:
            hcl += (f' acl {{ enabled = true, default_policy = "deny", '
                    f'tokens {{ master = "{self.acl_master_token}" }} }}')
        mode = ["-dev"] if self.dev else ["-server", "-bootstrap-expect=1", f"-data-dir={self.workdir / 'data'}"]
        return [find_binary("consul"), "agent", *mode, "-bind=127.0.0.1", "-client=127.0.0.1",
                "-log-level=warn", "-ui=false", f"-node=fieldsync-{self.ports['http']}", f"-hcl={hcl}",
                *(f"-{k.replace('_', '-')}-port={v}" for k, v in self.ports.items())]

    def ready(self) -> bool:
        status, body = _get(f"http://{self.http_addr}/v1/status/leader")
        if status != 200 or body.strip() in (b'""', b""):
            return False
        # A fresh server elects itself before it can serve KV writes; probe a consistent read.
        return _get(f"http://{self.http_addr}/v1/kv/fieldsync-ready-probe?consistent")[0] in (403, 404)


class Prometheus(LocalServer):
    """Prometheus with a given prometheus.yml; `reload()` applies an edited config like an operator would."""

    name = "prometheus"

    def __init__(self, workdir: Path, config: str) -> None:
        super().__init__(workdir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(config, encoding="utf-8")

    def command(self) -> list[str]:
        return [find_binary("prometheus"), f"--config.file={self.config_path}",
                f"--web.listen-address=127.0.0.1:{self.port}", f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                "--web.enable-lifecycle", "--log.level=warn"]

    def ready(self) -> bool:
        return _get(f"{self.url}/-/ready")[0] == 200

    def reload(self, config: str) -> None:
        self.config_path.write_text(config, encoding="utf-8")
        status, body = _get(f"{self.url}/-/reload", method="POST", timeout=10)
        if status != 200:
            raise RuntimeError(f"prometheus reload failed ({status}): {body[:500]!r}")
