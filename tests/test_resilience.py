"""`fieldsync serve` left alone for months: pauses, stops while a server hangs, and the like (issue 15), against real
Consul, Prometheus, git and HTTP."""

from __future__ import annotations

import signal
import time

from support import kv
from support.badhttp import serving, silent
from support.gitrepo import GitRepo
from support.serving import Served

from fieldsync.localservers import ConsulAgent, Prometheus


def test_a_paused_replica_goes_on_after_each_resume(consul: ConsulAgent, example_prometheus: Prometheus,
                                                    field_repo: GitRepo) -> None:
    """`docker pause`, a cgroup freezer or a debugger stop and continue the process: nothing to act on. Each pause
    outlasts the main thread's wait for signals (1 s), which is when Python 3.11's sigtimedwait returned an
    uninitialized siginfo that the service took for SIGTERM."""
    key = "resilience/paused"
    served = Served(consul, "--repo", str(field_repo.path), "--key", key, "--prometheus", example_prometheus.url)
    try:
        served.wait_for(lambda e: e["event"] == "sync" and e["outcome"] == "written")
        for _ in range(10):
            served.process.send_signal(signal.SIGSTOP)
            time.sleep(1.2)
            served.process.send_signal(signal.SIGCONT)
            time.sleep(0.3)
            assert served.process.poll() is None, served.log
        assert served.wait_ready() == "leader"
        mark = len(served.events)
        kv.hand_edit(consul, key, "company", display_name="After the pauses")
        assert served.wait_for(lambda e: e["event"] == "sync", after=mark)["hand_edits"] == 1, served.log
        assert not any(e["event"] in ("released", "stopped") for e in served.events), served.log
    finally:
        assert served.stop() == 0, served.log


def test_sigterm_while_prometheus_hangs_exits_within_the_grace(consul: ConsulAgent, field_repo: GitRepo) -> None:
    with serving(silent(60)) as (hung, _):
        served = Served(consul, "--repo", str(field_repo.path), "--key", "resilience/hung", "--prometheus", hung,
                        "--grace", "5")
        try:
            served.wait_for(lambda e: e["event"] == "leader")  # its first run now waits on the silent server
            time.sleep(1)
            started = time.monotonic()
            code = served.stop(signal.SIGTERM, timeout=30)
            took = time.monotonic() - started
        finally:
            served.stop(signal.SIGKILL)
    assert code == 0 and took <= 5 + 3, (took, served.log)
    assert "did not end within 5 s" in served.log and served.events[-1]["event"] == "stopped", served.log
