"""What `fieldsync serve` is given: its options, checked once at start."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...adapters.consul import ConsulKV
from ...errors import UsageError
from ...model import StatusReport

Log = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class StatusPage:
    """How the status page is written (render.py's renderings, given by the command line: the service renders
    nothing itself): the page for a status, and the status as JSON."""

    html: Callable[..., str]
    json: Callable[[StatusReport], dict[str, Any]]
    policy: Callable[[str | None], str]  # its Content-Security-Policy, for a page that refreshes from this URL


@dataclass(frozen=True)
class ServeOptions:
    repo: str  # --repo as it is, or --workdir holding the clone of git_url
    connect: Callable[[tuple[str, ...]], ConsulKV]  # a client for the given consul.addresses (flags and env applied)
    git_url: str | None = None
    branch: str = "main"
    git_token_file: str | None = None
    git_ssh_key: str | None = None
    listen: tuple[str, int] = ("127.0.0.1", 9469)
    webhook_secret_file: str | None = None
    interval: float = 60.0
    extract_interval: float = 300.0
    push_hand_edits: str | None = None  # the branch that follows the pending hand edits
    grace: float = 10.0  # seconds a stopping service waits for the run in progress
    agentless: bool = False  # Consul is reached at its servers, not at an agent of this node (leader.py)
    status_page: StatusPage | None = None  # GET / and /status.json; None: --status-page off
    # as for `sync`
    config_path: str | None = None
    prometheus: tuple[str, ...] = ()
    key: str | None = None
    lock_timeout: float | None = None
    drift: str | None = None
    dry_run: bool = False
    allow_rollback: bool = False
    force: bool = False
    allow_delete: bool = False

    def check(self) -> None:
        """Usage errors, before anything starts."""
        if self.push_hand_edits is not None and (not self.git_url or self.push_hand_edits == self.branch):
            raise UsageError("--push-hand-edits names a branch of --git-url other than --branch")
        for name in ("interval", "extract_interval", "grace"):
            if not 0 < getattr(self, name) < 86400 * 365:
                raise UsageError(f"--{name.replace('_', '-')} must be a number of seconds above 0 (and below a year)")


def read_secret(path: str) -> bytes:
    """The webhook secret: the file's content, surrounding whitespace stripped; never empty."""
    try:
        with open(path, "rb") as f:
            secret = f.read().strip()
    except OSError as e:
        raise UsageError(f"--webhook-secret-file {path}: {e.strerror}") from None
    if not secret:
        raise UsageError(f"--webhook-secret-file {path} is empty")
    return secret
