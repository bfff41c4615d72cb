"""What a command acts on: the repository's fieldsync.yaml, overridden by flags (key, servers, lock timeout)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

from ..adapters import files
from ..errors import UsageError
from ..model import CONFIG_FILE, Config, DeletionBudget, ServerSpec
from ..rules.config import (
    NO_SERVERS,
    default_config,
    is_url,
    key_problem,
    parse_config,
    require_unique_names,
    server_from_arg,
)


@dataclass(frozen=True)
class Settings:
    repo: str
    key: str
    servers: tuple[ServerSpec, ...]
    lock_timeout: float
    drift: str
    state_prefix: str
    budget: DeletionBudget
    consul_addresses: tuple[str, ...]
    order_ties: tuple[str, ...] = ()


def root_of(repo: str) -> str:
    """The top of the work tree holding `repo`, or `repo` itself outside any git repository."""
    return files.worktree_root(repo) or repo


def load_config(path: str | None, repo: str, committed: tuple[str, bytes | None] | None = None) -> Config:
    """The config file: an explicit path, else the one a commit holds (`committed`: where, its bytes or None when
    the commit has none), else <repo>/fieldsync.yaml when present, else the defaults."""
    if path is None and committed is not None:
        where, data = committed
        return default_config() if data is None else parse_config(where, data)
    if path is None:
        candidate = os.path.join(repo, CONFIG_FILE)
        path = candidate if os.path.exists(candidate) else None
    if path is None:
        return default_config()
    return parse_config(path, files.read_bytes(path, "config"))


def servers_from_args(args: Sequence[str]) -> tuple[ServerSpec, ...]:
    for arg in args:
        if not is_url(arg) and not os.path.exists(arg):
            raise UsageError(f"--prometheus {arg}: not a URL (http://, https://) nor an existing file or directory")
    servers = tuple(server_from_arg(arg) for arg in args)
    require_unique_names(servers, "--prometheus")
    return servers


def resolve(*, repo: str, config_path: str | None = None, prometheus: Sequence[str] = (), key: str | None = None,
            lock_timeout: float | None = None, drift: str | None = None,
            committed: tuple[str, bytes | None] | None = None) -> Settings:
    """Flags win over the config file: --prometheus replaces its server list, --key its key, --drift its policy.
    From a subdirectory, the repository is its work tree's top, as git finds it, and its fieldsync.yaml with it.
    `committed` is the config a commit holds, for a repository without a work tree (see load_config)."""
    repo = root_of(repo)
    config = load_config(config_path, repo, committed)
    servers = servers_from_args(prometheus) if prometheus else config.servers
    bad_key = key_problem(key) if key is not None else None
    if bad_key:
        raise UsageError(f"--key (or FIELDSYNC_KEY) {bad_key}")
    if lock_timeout is not None and not (math.isfinite(lock_timeout) and lock_timeout >= 0):
        raise UsageError(f"--lock-timeout {lock_timeout}: give a number of seconds, 0 or more")
    return Settings(repo, key or config.key, servers, config.lock_timeout if lock_timeout is None else lock_timeout,
                    drift or config.drift, config.state_prefix, config.deletion_budget, config.consul_addresses,
                    config.order_ties)


def require_servers(servers: Sequence[ServerSpec]) -> None:
    if not servers:
        raise UsageError(NO_SERVERS)
