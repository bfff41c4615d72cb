"""`fieldsync serve` as a separate process, as systemd or Kubernetes runs it: its JSON log read as it comes, its
HTTP endpoint called for real."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from fieldsync.localservers import ConsulAgent
from fieldsync.rules.webhook import signature

SECRET = "it's a secret"
Event = dict[str, Any]


class Served:
    """One `fieldsync serve` on a free loopback port, logging JSON to a list of events."""

    def __init__(self, agent: ConsulAgent | str, *args: str, env: dict[str, str] | None = None,
                 listen: bool = True) -> None:
        """`listen`: on a free loopback port, else where `env` says (FIELDSYNC_LISTEN)."""
        address = agent if isinstance(agent, str) else agent.http_addr
        self.events: list[Event] = []
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fieldsync", "serve", *(("--listen", "127.0.0.1:0") if listen else ()),
             "--log-format", "json", *args],
            env={**os.environ, "CONSUL_HTTP_ADDR": address, "CONSUL_HTTP_TOKEN": "", **(env or {})},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        started = self.wait_for(lambda e: e["event"] == "started", 30)
        self.url = f"http://{started['listen']}"

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._changed:
                self.lines.append(line)
                with contextlib.suppress(ValueError):  # a line that is not an event stays in self.lines
                    self.events.append(json.loads(line))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, match: Callable[[Event], bool], timeout: float = 60, after: int = 0) -> Event:
        """The first event from index `after` on that matches; fails the test after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((e for e in self.events[after:] if match(e)), None)
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                assert remaining > 0 and self.process.poll() is None or found, (
                    f"no matching event in {timeout} s; log:\n{''.join(self.lines)}")
                self._changed.wait(min(remaining, 1.0))

    def syncs(self, after: int = 0) -> list[Event]:
        return [e for e in self.events[after:] if e["event"] == "sync"]

    def wait_ready(self, timeout: float = 60) -> str:
        """/readyz's answer once it is 200: "leader" or "standby"."""
        deadline = time.monotonic() + timeout
        while (answer := self.get("/readyz"))[0] != 200:
            assert time.monotonic() < deadline, f"not ready in {timeout} s: {answer}; log:\n{self.log}"
            time.sleep(0.2)
        return answer[1].strip()

    def get(self, path: str) -> tuple[int, str]:
        return self.request(path)

    def request(self, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, str]:
        request = urllib.request.Request(self.url + path, data=body, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, answer.read().decode("utf-8")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8")

    def deliver(self, payload: dict[str, Any], event: str = "push", secret: str | None = SECRET,
                delivery: str | None = None) -> tuple[int, str]:
        """A GitHub webhook delivery, signed with `secret` (None: unsigned); its id a new one unless given (the same
        id twice is a replay)."""
        delivery = delivery or uuid.uuid4().hex
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "X-GitHub-Event": event, "X-GitHub-Delivery": delivery}
        if secret is not None:
            headers["X-Hub-Signature-256"] = signature(secret.encode(), body)
        return self.request("/hooks/github", body, headers)

    def flood(self, payload: dict[str, Any], count: int = 100, name: str = "flood") -> list[int]:
        """The status codes of `count` signed deliveries of `payload` sent at once."""
        codes: list[int] = []
        threads = [threading.Thread(target=lambda n=n: codes.append(self.deliver(payload, delivery=f"{name}-{n}")[0]))
                   for n in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return codes

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        status, text = self.get("/metrics")
        assert status == 200, text
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    def metric(self, name: str, **labels: str) -> float | None:
        return self.metrics().get((name, tuple(sorted(labels.items()))))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    @property
    def log(self) -> str:
        return "".join(self.lines)


def secret_file(directory: Path) -> Path:
    path = directory / "webhook-secret"
    path.write_text(f"  {SECRET}\n", encoding="utf-8")
    return path


def serve_clone(consul: ConsulAgent | str, remote: str, workdir: Path, prometheus: str, key: str, *extra: str,
                secret: Path | None = None) -> Served:
    """`fieldsync serve` following `remote`'s main (fetching only when told: --interval 3600 unless `extra` says)."""
    args = ["--git-url", remote, "--workdir", str(workdir), "--key", key, "--prometheus", prometheus,
            *(() if "--interval" in extra else ("--interval", "3600")), *extra]
    if secret is not None:
        args += ["--webhook-secret-file", str(secret)]
    return Served(consul, *args)


def serve_repo(consul: ConsulAgent | str, repo: Path, prometheus: str, key: str, *extra: str,
               secret: Path | None = None) -> Served:
    """`fieldsync serve` of `repo` as it is (fetching nothing; --interval 3600 unless `extra` says)."""
    args = ["--repo", str(repo), "--key", key, "--prometheus", prometheus,
            *(() if "--interval" in extra else ("--interval", "3600")), *extra]
    if secret is not None:
        args += ["--webhook-secret-file", str(secret)]
    return Served(consul, *args)
