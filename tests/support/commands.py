"""Running fieldsync: in-process through click's runner, or as a separate process like cron or CI would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from fieldsync.cli import main
from fieldsync.localservers import ConsulAgent

from .kv import KEY

# A source init accepts for its workflows (the tests' fieldsync is an editable install, which a workflow cannot use).
PINNED = "git+https://git.example.com/platform/fieldsync.git@" + "0" * 40


def cli(agent: ConsulAgent | str | None, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """(exit code, stdout and stderr) of one command; an exception escaping the command fails the test."""
    address = agent if isinstance(agent, str) or agent is None else agent.http_addr
    base = {"CONSUL_HTTP_ADDR": address, "CONSUL_HTTP_TOKEN": ""} if address else {}
    result = CliRunner().invoke(main, list(args), env={**base, **(env or {})})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


def run_sync(agent: ConsulAgent | str, repo: Path, *servers: str, key: str = KEY, extra: tuple[str, ...] = (),
             env: dict[str, str] | None = None) -> tuple[int, str]:
    args = ["sync", "--repo", str(repo), "--key", key, *extra]
    for server in servers:
        args += ["--prometheus", server]
    return cli(agent, *args, env=env)


def sync_process(agent: ConsulAgent, repo: Path, rev: str, server: str, key: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "fieldsync", "sync", "--repo", str(repo), "--rev", rev, "--key", key,
         "--prometheus", server], env={**os.environ, "CONSUL_HTTP_ADDR": agent.http_addr},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(processes: list[subprocess.Popen[str]], timeout: float = 60) -> list[tuple[int, str]]:
    """(exit code, output) of each process, killing any that outlives `timeout`."""
    results = []
    for p in processes:
        try:
            output, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            output, _ = p.communicate()
        results.append((p.returncode, output))
    return results


def customize_company(repo) -> str:  # noqa: ANN001 - a support.gitrepo.GitRepo
    repo.write("fields/company.yaml", "name: company\ndisplay_name: Empresa\nfield_type: select\n"
               "options: [acme, globex]\ncategory: [basic, billing]\norder: 1\n")
    return repo.commit("customize company")


def synced(agent: ConsulAgent, repo, prometheus_url: str, key: str) -> tuple[str, ...]:  # noqa: ANN001 - a GitRepo
    """Sync `repo` to `key` (it must succeed); the arguments that aim a command at the same repository and key."""
    code, output = run_sync(agent, repo.path, prometheus_url, key=key)
    assert code == 0, output
    return ("--repo", str(repo.path), "--key", key, "--prometheus", prometheus_url)
