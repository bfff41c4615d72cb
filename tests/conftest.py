"""Fixtures: real Consul and Prometheus servers on loopback, and throwaway git repositories built with pygit2."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.gitrepo import GitRepo, shipped_fields_repo

from fieldsync.localservers import ConsulAgent, LocalServer, Prometheus

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "example"


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "repo")


@pytest.fixture
def field_repo(tmp_path: Path) -> GitRepo:
    """A repository holding a copy of the shipped fields/, committed."""
    return shipped_fields_repo(tmp_path / "repo")


@pytest.fixture(scope="session")
def consul(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsulAgent]:
    """One dev agent for the session; tests keep apart by using their own keys."""
    with ConsulAgent(tmp_path_factory.mktemp("consul")) as agent:
        yield agent  # type: ignore[misc]


@pytest.fixture
def started_servers() -> Iterator[list[LocalServer]]:
    """Servers a test starts of its own; all are stopped afterwards, even when the test fails."""
    started: list[LocalServer] = []
    yield started
    for server in started:
        server.stop()


@pytest.fixture
def start_consul(tmp_path: Path, started_servers: list[LocalServer]) -> Callable[..., ConsulAgent]:
    """Start an agent of the test's own: dev=False keeps KV across restarts, acl_master_token enables ACLs."""

    def start(**options: object) -> ConsulAgent:
        agent = ConsulAgent(tmp_path / f"consul{len(started_servers)}", **options)  # type: ignore[arg-type]
        started_servers.append(agent)
        return agent.start()  # type: ignore[return-value]

    return start


@pytest.fixture
def start_prometheus(tmp_path: Path, started_servers: list[LocalServer]) -> Callable[[str], Prometheus]:
    """Start a Prometheus with a given config; the example's file_sd targets sit beside it."""

    def start(config: str) -> Prometheus:
        workdir = tmp_path / f"prometheus{len(started_servers)}"
        shutil.copytree(EXAMPLE / "targets", workdir / "targets")
        server = Prometheus(workdir, config)
        started_servers.append(server)
        return server.start()  # type: ignore[return-value]

    return start


@pytest.fixture(scope="session")
def example_config() -> str:
    return (EXAMPLE / "prometheus.yml").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def example_prometheus(tmp_path_factory: pytest.TempPathFactory, example_config: str) -> Iterator[Prometheus]:
    """One Prometheus with the example config for the session, for tests that neither reload nor stop it."""
    workdir = tmp_path_factory.mktemp("prometheus")
    shutil.copytree(EXAMPLE / "targets", workdir / "targets")
    with Prometheus(workdir, example_config) as server:
        yield server  # type: ignore[misc]
