"""The command line's one error handler: a clear line and an exit code, never a traceback unless asked for."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from support.kv import client

from fieldsync import __version__
from fieldsync.cli import main
from fieldsync.usecases import history


def _boom(**_: object) -> None:
    raise RuntimeError("boom")


def test_unexpected_error_is_one_line_with_a_hint(monkeypatch: pytest.MonkeyPatch, field_repo) -> None:
    monkeypatch.setattr(history, "history", _boom)
    result = CliRunner().invoke(main, ["history", "company", "--repo", str(field_repo.path)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"fieldsync: unexpected error: RuntimeError: boom (fieldsync {__version__}); rerun with --traceback or "
        "FIELDSYNC_TRACEBACK=1 to see where, and report it"]


@pytest.mark.parametrize("how", [["--traceback"], []])
def test_traceback_only_when_asked_for(monkeypatch: pytest.MonkeyPatch, field_repo, how: list[str]) -> None:
    monkeypatch.setattr(history, "history", _boom)
    env = {} if how else {"FIELDSYNC_TRACEBACK": "1"}
    result = CliRunner().invoke(main, [*how, "history", "company", "--repo", str(field_repo.path)], env=env)
    assert isinstance(result.exception, RuntimeError)  # propagated to the interpreter, which prints it


def test_fieldsync_error_is_one_line_with_its_exit_code(field_repo) -> None:
    result = CliRunner().invoke(main, ["history", "nope", "--repo", str(field_repo.path)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "fieldsync: error: no commit reachable from HEAD touches fields/nope.yaml"]


def test_ctrl_c_while_waiting_for_the_lock_exits_130_and_ends_the_session(consul, start_prometheus, example_config,
                                                                           field_repo) -> None:
    prom = start_prometheus(example_config)
    key = "interrupt/fields"
    other = client(consul)
    holder = other.session.create(ttl=30, behavior="delete", lock_delay=0)
    assert other.kv.put(f"{key}.lock", "someone", acquire=holder)
    process = subprocess.Popen(
        [sys.executable, "-m", "fieldsync", "sync", "--repo", str(field_repo.path), "--key", key,
         "--prometheus", prom.url, "--lock-timeout", "60"],
        env={**os.environ, "CONSUL_HTTP_ADDR": consul.http_addr}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        deadline = time.monotonic() + 30
        while not any(s["Name"] == f"fieldsync sync {key}.lock" for s in other.session.list()[1]):
            assert time.monotonic() < deadline and process.poll() is None, process.communicate()
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
        other.session.destroy(holder)
    assert process.returncode == 130
    assert stderr.strip().splitlines() == ["fieldsync: interrupted"]
    assert not any(s["Name"] == f"fieldsync sync {key}.lock" for s in other.session.list()[1])
