"""The command line's one error handler: a clear line and an exit code, never a traceback unless asked for."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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


def test_ctrl_c_while_waiting_for_the_lock_exits_130_and_ends_the_session(consul, example_prometheus,
                                                                           field_repo) -> None:
    prom = example_prometheus
    key = "interrupt/fields"
    other = client(consul)
    holder = other.session.create(ttl=30, behavior="delete", lock_delay=0)
    assert other.kv.put(f"fieldsync/{key}.lock", "someone", acquire=holder)
    process = subprocess.Popen(
        [sys.executable, "-m", "fieldsync", "sync", "--repo", str(field_repo.path), "--key", key,
         "--prometheus", prom.url, "--lock-timeout", "60"],
        env={**os.environ, "CONSUL_HTTP_ADDR": consul.http_addr}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        deadline = time.monotonic() + 30
        while not any(s["Name"] == f"fieldsync sync fieldsync/{key}.lock" for s in other.session.list()[1]):
            assert time.monotonic() < deadline and process.poll() is None, process.communicate()
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
        other.session.destroy(holder)
    assert process.returncode == 130
    lines = [line for line in stderr.splitlines() if line]
    assert lines[-1] == "fieldsync: interrupted", stderr  # after, perhaps, the line naming the lock's holder
    assert all(line == f"waiting for fieldsync/{key}.lock: held by another client" for line in lines[:-1]), stderr
    assert not any(s["Name"] == f"fieldsync sync fieldsync/{key}.lock" for s in other.session.list()[1])


def test_sigterm_while_holding_the_lock_releases_it_at_once(consul, example_prometheus,
                                                            field_repo) -> None:
    """systemd, Kubernetes and CI runners stop a job with SIGTERM: the next sync must not wait for the TTL."""
    from support.commands import finish, run_sync, sync_process

    prom = example_prometheus
    other = client(consul)
    for attempt in range(30):  # catch a sync while it holds its lock (it holds it for some milliseconds)
        key = f"sigterm/{attempt}"
        process = sync_process(consul, field_repo.path, "HEAD", prom.url, key)
        held = None
        while process.poll() is None and held is None:
            held = (other.kv.get(f"fieldsync/{key}.lock")[1] or {}).get("Session")
        if held is None:
            finish([process])
            continue
        os.kill(process.pid, signal.SIGSTOP)  # frozen while holding the lock
        if (other.kv.get(f"fieldsync/{key}.lock")[1] or {}).get("Session") != held:
            os.kill(process.pid, signal.SIGCONT)
            finish([process])
            continue
        os.kill(process.pid, signal.SIGTERM)
        os.kill(process.pid, signal.SIGCONT)
        [(code, output)] = finish([process])
        assert code == 143 and "fieldsync: terminated" in output and "Traceback" not in output, output
        assert other.kv.get(f"fieldsync/{key}.lock")[1] is None  # released: the session was destroyed on the way out
        code, output = run_sync(consul, field_repo.path, prom.url, key=key, extra=("--lock-timeout", "0"))
        assert code == 0, output
        return
    pytest.fail("no attempt caught a sync holding its lock")


def test_ctrl_c_during_the_demo_stops_its_servers(tmp_path) -> None:
    root = Path(__file__).resolve().parents[1]
    process = subprocess.Popen([sys.executable, str(root / "scripts/demo.py")], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(tmp_path)})
    try:
        assert process.stdout is not None
        for line in process.stdout:  # wait until both servers run and the demo is at work
            if line.startswith("== sync fields/"):
                break
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130 and "Traceback" not in stderr, stderr
    assert "interrupted" in stderr
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True).stdout.split()
    assert leftovers == [], leftovers  # no consul or prometheus left running from the demo's directory
