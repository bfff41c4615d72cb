"""Fixtures: real Consul and Prometheus servers on loopback, and throwaway git repositories built with pygit2."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pygit2
import pytest

from fieldsync.localservers import ConsulAgent, LocalServer, Prometheus

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "example"


class GitRepo:
    """A work tree with helpers to write files and commit them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.repo = pygit2.init_repository(str(path), initial_head="main")
        self.signature = pygit2.Signature("Test Person", "test@example.org")

    def write(self, relpath: str, text: str | bytes) -> Path:
        target = self.path / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(text, encoding="utf-8")
        return target

    def remove(self, relpath: str) -> None:
        (self.path / relpath).unlink()

    def commit(self, message: str = "change") -> str:
        index = self.repo.index
        index.add_all()
        index.write()
        tree = index.write_tree()
        parents = [] if self.repo.head_is_unborn else [self.repo.head.target]
        oid = self.repo.create_commit("HEAD", self.signature, self.signature, message, tree, parents)
        return str(oid)


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "repo")


@pytest.fixture
def field_repo(git_repo: GitRepo) -> GitRepo:
    """A repository holding a copy of the shipped fields/, committed."""
    shutil.copytree(ROOT / "fields", git_repo.path / "fields")
    git_repo.commit("shipped fields")
    return git_repo


@pytest.fixture(scope="session")
def consul(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsulAgent]:
    """One dev agent for the session; tests keep apart by using their own keys."""
    with ConsulAgent(tmp_path_factory.mktemp("consul")) as agent:
        yield agent  # type: ignore[misc]


@pytest.fixture
def consul_agent_client(consul: ConsulAgent):  # noqa: ANN201
    import consul as py_consul

    host, port = consul.http_addr.split(":")
    return py_consul.Consul(host=host, port=int(port))


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


@pytest.fixture
def example_config() -> str:
    return (EXAMPLE / "prometheus.yml").read_text(encoding="utf-8")
