"""Throwaway git repositories built with pygit2."""

from __future__ import annotations

import shutil
from pathlib import Path

import pygit2

SHIPPED_FIELDS = Path(__file__).resolve().parents[2] / "fields"


class GitRepo:
    """A work tree with helpers to write files and commit them."""

    def __init__(self, path: Path, repo: pygit2.Repository | None = None) -> None:
        self.path = path
        self.repo = repo or pygit2.init_repository(str(path), initial_head="main")
        self.signature = pygit2.Signature("Test Person", "test@example.org")

    @classmethod
    def open(cls, path: Path) -> GitRepo:
        """An existing repository (one `fieldsync init` made, say)."""
        return cls(path, pygit2.Repository(str(path)))

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


def bare_remote(path: Path, work: GitRepo) -> str:
    """A bare repository at `path` holding `work`'s main branch, as `origin` of `work`; its file:// URL."""
    pygit2.init_repository(str(path), bare=True)
    url = path.resolve().as_uri()
    work.repo.remotes.create("origin", url)
    push(work)
    return url


def push(work: GitRepo, branch: str = "main") -> None:
    work.repo.remotes["origin"].push([f"+refs/heads/{branch}:refs/heads/{branch}"])


def shipped_fields_repo(path: Path) -> GitRepo:
    """A new repository at `path` holding a copy of the shipped fields/, committed."""
    repo = GitRepo(path)
    shutil.copytree(SHIPPED_FIELDS, repo.path / "fields")
    repo.commit("shipped fields")
    return repo
