"""`fieldsync serve` left alone for months: pauses, stops while a server hangs, and the like (issue 15), against real
Consul, Prometheus, git and HTTP."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pygit2
from support import kv
from support.badhttp import redirect_to, serving, silent
from support.commands import cli
from support.githttp import git_over_http
from support.gitrepo import GitRepo, bare_remote, push
from support.serving import Served, secret_file, serve_clone, serve_repo

from fieldsync.adapters.consul import SESSION_TTL
from fieldsync.localservers import ConsulAgent, ConsulCluster, Prometheus, RecordingProxy


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


def test_a_leader_cut_off_from_consul_steps_down_before_a_standby_takes_over(
        consul: ConsulAgent, example_prometheus: Prometheus, field_repo: GitRepo) -> None:
    """The leader's path to Consul is blackholed (its requests get no answer): it stops leading as soon as its session
    can no longer be kept (within the session TTL), as Consul hands the lock to the standby; the two never both say
    they lead for long, and the cut-off one is not ready."""
    key = "resilience/blackholed"
    args = ("--repo", str(field_repo.path), "--key", key, "--prometheus", example_prometheus.url)
    proxy = RecordingProxy(consul.http_addr)
    cut = Served(proxy.address, *args)
    try:
        assert cut.wait_ready() == "leader"
        standby = Served(consul, *args)
        try:
            assert standby.wait_ready() == "standby"
            proxy.blackhole.set()
            started = time.monotonic()
            both, stepped_down, taken_over = 0.0, None, None
            while stepped_down is None or taken_over is None:
                assert time.monotonic() - started < 30, (cut.log, standby.log)
                leading = [served.metric("fieldsync_leader") == 1 for served in (cut, standby)]
                now = time.monotonic() - started
                if all(leading):
                    both += 0.1
                stepped_down = now if stepped_down is None and not leading[0] else stepped_down
                taken_over = now if taken_over is None and leading[1] else taken_over
                time.sleep(0.1)
            assert stepped_down <= 12 and both <= 3, (stepped_down, both, cut.log)
            assert cut.metric("fieldsync_leader_stepdowns_total") == 1
            assert any(e["event"] == "standby" and e.get("reason") for e in cut.events), cut.log  # says why
            assert cut.get("/readyz") == (503, "Consul does not answer\n")
            print(f"stepped down after {stepped_down:.1f} s, standby led after {taken_over:.1f} s, both {both:.1f} s")
        finally:
            assert standby.stop() == 0, standby.log
    finally:
        proxy.blackhole.clear()
        cut.stop(signal.SIGKILL)
        proxy.stop()


def test_agentless_replicas_keep_one_leader_through_servers_behind_a_load_balancer(
        tmp_path: Path, example_prometheus: Prometheus, field_repo: GitRepo) -> None:
    """consul-k8s without agents: the replicas reach three Consul servers through one address that sends each request
    to the next server. One leads and goes on leading (its session is renewed through any server); killed, it is
    replaced within twice the session TTL, and the two never both lead."""
    key = "resilience/agentless"
    args = ("--repo", str(field_repo.path), "--key", key, "--prometheus", example_prometheus.url, "--agentless")
    with ConsulCluster(tmp_path / "cluster") as cluster:
        proxy = RecordingProxy([server.http_addr for server in cluster.servers])
        first = Served(proxy.address, *args)
        try:
            assert first.wait_ready() == "leader"
            second = Served(proxy.address, *args)
            try:
                assert second.wait_ready() == "standby"
                started, both = time.monotonic(), 0
                while time.monotonic() - started < 1.2 * SESSION_TTL:  # a check passed on the wrong server would end it
                    both += first.metric("fieldsync_leader") == 1 and second.metric("fieldsync_leader") == 1
                    assert first.metric("fieldsync_leader") == 1, first.log
                    time.sleep(0.2)
                assert first.metric("fieldsync_leader_stepdowns_total") == 0 and both == 0, first.log
                assert not [path for _, path, _ in proxy.since(0) if path.startswith("/v1/agent/")]
                first.stop(signal.SIGKILL)
                killed = time.monotonic()
                while second.metric("fieldsync_leader") != 1:
                    assert time.monotonic() - killed < 2 * SESSION_TTL + 5, second.log
                    time.sleep(0.1)
                took = time.monotonic() - killed
                assert second.wait_for(lambda e: e["event"] == "sync")["outcome"] == "unchanged", second.log
                print(f"agentless: the standby led {took:.1f} s after the leader was killed")
            finally:
                assert second.stop() == 0, second.log
        finally:
            first.stop(signal.SIGKILL)
            proxy.stop()


def test_a_frozen_consul_agent_makes_the_replica_unready_and_it_recovers(
        start_consul, example_prometheus: Prometheus, field_repo: GitRepo) -> None:  # noqa: ANN001
    agent = start_consul()
    served = Served(agent, "--repo", str(field_repo.path), "--key", "resilience/frozen", "--prometheus",
                    example_prometheus.url)
    try:
        assert served.wait_ready() == "leader"
        agent.pause()
        started = time.monotonic()
        while served.get("/readyz")[0] == 200:
            assert time.monotonic() - started < 15, served.log
            time.sleep(0.2)
        unready = time.monotonic() - started
        assert served.get("/readyz") == (503, "Consul does not answer\n")
        agent.pause(False)
        assert served.wait_ready(60) in ("leader", "standby"), served.log
        print(f"unready {unready:.1f} s after the agent froze")
    finally:
        agent.pause(False)
        assert served.stop() == 0, served.log


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_the_listener_holds_against_big_bodies_idle_connections_and_replays(
        consul: ConsulAgent, example_prometheus: Prometheus, field_repo: GitRepo, tmp_path: Path) -> None:
    served = serve_repo(consul, field_repo.path, example_prometheus.url, "resilience/listener",
                        secret=secret_file(tmp_path))
    try:
        served.wait_for(lambda e: e["event"] == "sync")
        host, port = served.url.split("//")[1].split(":")
        before = _rss_kib(served.process.pid)

        def big_unsigned_body() -> int:
            body = b"x" * (25 * 1024 * 1024)
            with socket.create_connection((host, int(port)), timeout=30) as conn:
                conn.sendall(b"POST /hooks/github HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\n"
                             + f"Content-Length: {len(body)}\r\n\r\n".encode())
                with contextlib.suppress(OSError):  # it may answer, and close, before the body is all sent
                    conn.sendall(body)
                return int(conn.recv(64).split()[1])

        with ThreadPoolExecutor(20) as pool:
            statuses = list(pool.map(lambda _: big_unsigned_body(), range(20)))
        grown = (_rss_kib(served.process.pid) - before) / 1024
        assert statuses == [413] * 20 and grown < 60, (statuses, grown)

        with socket.create_connection((host, int(port)), timeout=30) as idle:  # sends nothing
            started = time.monotonic()
            assert idle.recv(1) == b""  # closed by the server
            closed = time.monotonic() - started
        assert closed <= 10, closed

        mark = len(served.events)
        payload = {"ref": "refs/heads/main", "after": "0" * 40}
        answers = [served.deliver(payload, delivery="captured-once") for _ in range(20)]
        assert answers[0][0] == 202 and {a for a in answers[1:]} == {(200, "delivery captured-once came already; "
                                                                       "nothing done\n")}
        time.sleep(2)
        assert len(served.syncs(mark)) <= 1, served.syncs(mark)
        assert served.get("/readyz") == (200, "leader\n")
        print(f"RSS grew {grown:.1f} MiB for 20 bodies of 25 MB; an idle connection closed after {closed:.1f} s")
    finally:
        assert served.stop() == 0, served.log


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _packs(workdir: Path) -> int:
    return len(list((workdir / "objects" / "pack").glob("*.pack")))


def test_pushes_leave_no_descriptors_nor_pack_files_behind(consul: ConsulAgent, example_prometheus: Prometheus,
                                                          field_repo: GitRepo, tmp_path: Path) -> None:
    pushes = int(os.environ.get("FIELDSYNC_PUSHES", "300"))
    remote, work = bare_remote(tmp_path / "remote.git", field_repo), tmp_path / "work"
    served = serve_clone(consul, remote, work, example_prometheus.url, "resilience/pushes",
                         secret=secret_file(tmp_path))
    try:
        served.wait_for(lambda e: e["event"] == "sync")
        fds, packs = _open_fds(served.process.pid), _packs(work)
        for n in range(pushes):
            field_repo.write("fields/site.yaml", f"name: site\ndisplay_name: Site {n}\n")
            commit = field_repo.commit(f"push {n}")
            push(field_repo)
            mark = len(served.events)
            assert served.deliver({"ref": "refs/heads/main", "after": commit})[0] == 202
            served.wait_for(lambda e, commit=commit: e["event"] == "sync" and e["commit"] == commit, after=mark)
        grown = (_open_fds(served.process.pid) - fds, _packs(work) - packs)
        assert grown[0] <= 5 and grown[1] <= 5, grown
        assert kv.records(consul, "resilience/pushes")["site"]["display_name"] == f"Site {pushes - 1}"
        print(f"{pushes} pushes: open descriptors {fds} -> {fds + grown[0]}, pack files {packs} -> "
              f"{packs + grown[1]}")
    finally:
        assert served.stop() == 0, served.log


def _serving_after_first_sync(consul: ConsulAgent, field_repo: GitRepo, prometheus: Prometheus, tmp_path: Path,
                              key: str) -> tuple[Served, Path, str]:
    remote = bare_remote(tmp_path / "remote.git", field_repo)
    served = serve_clone(consul, remote, tmp_path / "work", prometheus.url, key, "--interval", "2",
                         secret=secret_file(tmp_path))
    served.wait_for(lambda e: e["event"] == "sync" and e["outcome"] == "written")
    return served, tmp_path / "work", remote


def test_a_damaged_clone_is_made_again_and_synced_within_one_interval(
        consul: ConsulAgent, example_prometheus: Prometheus, field_repo: GitRepo, tmp_path: Path) -> None:
    key = "resilience/damaged"
    served, work, _ = _serving_after_first_sync(consul, field_repo, example_prometheus, tmp_path, key)
    try:
        for path in (work / "objects").iterdir():  # every object gone: packs and loose ones
            shutil.rmtree(path) if path.name != "pack" else [p.unlink() for p in path.iterdir()]
        field_repo.write("fields/site.yaml", "name: site\ndisplay_name: After The Damage\n")
        commit = field_repo.commit("after the damage")
        push(field_repo)
        mark = len(served.events)
        synced = served.wait_for(lambda e: e["event"] == "sync" and e["commit"] == commit, timeout=10, after=mark)
        assert synced["outcome"] == "written", served.log
        assert any(e["event"] == "reclone" for e in served.events[mark:]), served.log
        assert kv.records(consul, key)["site"]["display_name"] == "After The Damage"
        assert served.metric("fieldsync_clone_remade_total") == 1 and served.wait_ready() == "leader"
    finally:
        assert served.stop() == 0, served.log


def test_a_deleted_branch_is_refused_and_named_until_it_is_back(
        consul: ConsulAgent, example_prometheus: Prometheus, field_repo: GitRepo, tmp_path: Path) -> None:
    key = "resilience/branch-gone"
    served, _, remote = _serving_after_first_sync(consul, field_repo, example_prometheus, tmp_path, key)
    try:
        before = kv.live(consul, key)
        pygit2.Repository(remote.removeprefix("file://")).references.delete("refs/heads/main")
        mark = len(served.events)
        failed = served.wait_for(lambda e: e["event"] == "sync" and e["outcome"] != "written", timeout=15, after=mark)
        assert "has no branch main" in failed["error"], served.log
        assert served.get("/readyz") == (503, "the branch is gone from the remote\n")
        assert kv.live(consul, key) == before  # nothing synced from what the clone last had
        push(field_repo)
        assert served.wait_ready() == "leader"
    finally:
        assert served.stop() == 0, served.log


def test_a_rewritten_history_is_refused_and_named(consul: ConsulAgent, example_prometheus: Prometheus,
                                                 field_repo: GitRepo, tmp_path: Path) -> None:
    key = "resilience/rewritten"
    served, _, _ = _serving_after_first_sync(consul, field_repo, example_prometheus, tmp_path, key)
    try:
        first = field_repo.repo.head.target
        field_repo.write("fields/site.yaml", "name: site\ndisplay_name: Dropped Later\n")
        dropped = field_repo.commit("a commit the force-push drops")
        push(field_repo)
        served.wait_for(lambda e: e["event"] == "sync" and e["commit"] == dropped and e["outcome"] == "written")
        field_repo.repo.reset(first, pygit2.enums.ResetMode.HARD)
        field_repo.write("fields/team.yaml", "name: team\ndisplay_name: After The Force-Push\n")
        rewritten = field_repo.commit("a new commit on the rewritten history")
        push(field_repo)  # forced
        mark = len(served.events)
        refused = served.wait_for(lambda e: e["event"] == "sync" and e["commit"] == rewritten, timeout=15, after=mark)
        assert refused["outcome"] == "refused" and "history was rewritten" in refused["reason"], served.log
        assert kv.records(consul, key)["site"]["display_name"] == "Dropped Later"  # left as it was
        code, output = cli(consul, "sync", "--repo", str(field_repo.path), "--key", key, "--prometheus",
                           example_prometheus.url, "--allow-rollback")
        assert code == 0 and kv.records(consul, key)["team"]["display_name"] == "After The Force-Push", output
    finally:
        assert served.stop() == 0, served.log


def test_the_git_token_goes_to_the_configured_host_only(consul: ConsulAgent, example_prometheus: Prometheus,
                                                       field_repo: GitRepo, tmp_path: Path) -> None:
    """A remote that redirects elsewhere (another host) gets no token from a credentials callback: libgit2 would
    hand it to whichever host asks."""
    bare_remote(tmp_path / "remotes" / "fields.git", field_repo)
    token = tmp_path / "token"
    token.write_text("s3cr3t-token\n")
    seen: list[str] = []
    with git_over_http(tmp_path / "remotes", "s3cr3t-token", seen) as elsewhere, \
            serving(redirect_to(elsewhere)) as (redirector, _):
        configured = redirector.replace("127.0.0.1", "localhost") + "/fields.git"
        served = serve_clone(consul, configured, tmp_path / "work", example_prometheus.url, "resilience/redirect",
                             "--git-token-file", str(token))
        try:
            failed = served.wait_for(lambda e: e["event"] == "fetch")
        finally:
            assert served.stop() == 0, served.log
    assert not any("s3cr3t" in base64.b64decode(a.removeprefix("Basic ") or b"").decode(errors="replace")
                   for a in seen), seen
    assert "no credentials for 127.0.0.1: they are for localhost only" in failed["error"], served.log
