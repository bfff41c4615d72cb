"""Where `serve` takes its commits from: a bare clone of --git-url that it fetches, or --repo as it is; and the
settings each commit holds.

The clone looks after itself: each fetch releases the repository's file handles, and once fetches have left more
than a few pack files they are packed into one; a clone damaged on disk (a pack gone or cut short: objects of the
branch that no longer read back) is made again from the remote; a branch gone from the remote is said as such, never
synced from what the clone last had. Each of these is the GIT source's problem while it lasts.
"""

from __future__ import annotations

from typing import Any

from ...adapters import git
from ...errors import FieldsyncError
from ...model import CONFIG_FILE
from ...rules import metrics
from ...rules.readiness import Reason, Source
from .. import settings as settings_
from .leader import problem
from .options import Log, ServeOptions
from .state import Store


class Repository:
    def __init__(self, options: ServeOptions, store: Store, log: Log) -> None:
        self.o, self.store, self.log = options, store, log
        git.limit_open_packs()
        self.handle: Any = None  # the pygit2 repository, once opened
        self.generation = 0  # bumped by reload(): settings are read again
        self._cached: tuple[tuple[str, int], settings_.Settings] | None = None

    def reload(self) -> None:
        self.generation += 1

    def credentials(self) -> git.Credentials:
        assert self.o.git_url is not None
        return git.remote_credentials(self.o.git_url, self.o.git_token_file, self.o.git_ssh_key)

    def fetch(self) -> str:
        """The commit to sync: the branch fetched from --git-url (the clone made again first if it is damaged), or
        --repo's HEAD."""
        if self.o.git_url is None:
            self.handle = git.open_repo(self.o.repo)
            return str(git.resolve_commit(self.handle, "HEAD").id)
        credentials = self.credentials()
        if self.handle is None:
            self.handle = git.clone_or_open(self.o.git_url, self.o.repo, credentials)
        try:
            commit = git.fetch_branch(self.handle, self.o.branch, credentials)
        except git.BranchGone as e:
            self.store.problem(Source.GIT, Reason.BRANCH_GONE, str(e))
            raise
        except FieldsyncError as e:
            if self._intact():
                self.store.problem(Source.GIT, Reason.REMOTE, str(e))
                raise
            commit = self._reclone(f"fetching failed on a damaged clone ({e})")
        if not git.intact(self.handle, commit):
            commit = self._reclone(f"objects of {commit[:12]} do not read back")
        self.store.problem(Source.GIT, None)
        if git.compact(self.handle):
            self.log({"event": "compact", "message": "the clone's pack files were packed into one"})
        return commit

    def _intact(self) -> bool:
        """Whether what the clone holds of the branch reads back (a clone with nothing of it yet does)."""
        tip = self.handle.references.get(f"refs/heads/{self.o.branch}")
        return tip is None or git.intact(self.handle, str(tip.target))

    def _reclone(self, why: str) -> str:
        """Make the clone again from the remote and fetch the branch; its commit."""
        assert self.o.git_url is not None
        self.store.problem(Source.GIT, Reason.CLONE_DAMAGED, why)
        self.store.count(metrics.recloned)
        self.log({"event": "reclone", "error": why})
        try:
            self.handle = git.reclone(self.o.git_url, self.o.repo, self.credentials())
            return git.fetch_branch(self.handle, self.o.branch, self.credentials())
        except Exception as e:  # a remote that fails now too: the next run tries again
            self.handle = None
            raise FieldsyncError(f"the clone was damaged and could not be made again: {problem(e)}") from None

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
