"""Where `serve` takes its commits from: a bare clone of --git-url that it fetches, or --repo as it is; and the
settings each commit holds."""

from __future__ import annotations

from typing import Any

from ...adapters import git
from ...rules.config import CONFIG_FILE
from .. import settings as settings_
from .options import ServeOptions


class Repository:
    def __init__(self, options: ServeOptions) -> None:
        self.o = options
        self.handle: Any = None  # the pygit2 repository, once opened
        self.generation = 0  # bumped by reload(): settings are read again
        self._cached: tuple[tuple[str, int], settings_.Settings] | None = None

    def reload(self) -> None:
        self.generation += 1

    def credentials(self) -> Any:
        return git.remote_credentials(self.o.git_token_file, self.o.git_ssh_key)

    def fetch(self) -> str:
        """The commit to sync: the branch fetched from --git-url, or --repo's HEAD."""
        if self.o.git_url is None:
            self.handle = git.open_repo(self.o.repo)
            return str(git.resolve_commit(self.handle, "HEAD").id)
        credentials = self.credentials()
        if self.handle is None:
            self.handle = git.clone_or_open(self.o.git_url, self.o.repo, credentials)
        return git.fetch_branch(self.handle, self.o.branch, credentials)

    def settings(self, commit: str) -> settings_.Settings:
        """fieldsync.yaml as the commit holds it (a clone) or as the work tree holds it (--repo), read again when the
        commit changes or on reload; flags win."""
        if self._cached is not None and self._cached[0] == (commit, self.generation):
            return self._cached[1]
        committed = None
        if self.o.git_url is not None:
            committed = (f"{self.o.git_url}@{commit[:12]}:{CONFIG_FILE}", git.read_at(self.handle, commit, CONFIG_FILE))
        s = settings_.resolve(repo=self.o.repo, config_path=self.o.config_path, prometheus=self.o.prometheus,
                              key=self.o.key, lock_timeout=self.o.lock_timeout, drift=self.o.drift,
                              committed=committed)
        self._cached = ((commit, self.generation), s)
        return s
