"""What a `fieldsync serve` replica is and knows at one moment, as one immutable snapshot, and its readiness, which is
derived from it: never a slot that whichever part wrote last overwrites.

Each part that talks to the outside world records its own problem, under its own source, and clears only its own:
a watch that answers again cannot hide the election's failure. `/readyz` says the public reason, never an address
or a raw error (those go to the log).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from types import MappingProxyType

from ..model import StatusReport
from .metrics import MetricState
from .webhook import Deliveries


class Role(Enum):
    ELECTING = "electing a leader"
    LEADER = "leader"
    STANDBY = "standby"


class Source(Enum):
    """Who records a problem."""

    GIT = "git"  # the remote and the clone: the first fetch, a damaged clone, a branch gone
    ELECTION = "election"  # the session, its check, the blocking query on the leader key
    DOCUMENT_WATCH = "document watch"  # the leader's blocking query on the document
    NUDGE_WATCH = "nudge watch"  # the leader's blocking query on the nudge key


class Reason(Enum):
    """What /readyz says is wrong: no address, no raw error."""

    FIRST_FETCH = "no commit fetched yet"
    REMOTE = "the git remote cannot be fetched"
    CLONE_DAMAGED = "the clone is damaged; making it again"
    BRANCH_GONE = "the branch is gone from the remote"
    CONSUL_DENIED = "Consul denies a request: check the token's policy"
    CONSUL_DOWN = "Consul does not answer"


@dataclass(frozen=True)
class Snapshot:
    role: Role = Role.ELECTING
    problems: Mapping[Source, Reason] = field(default_factory=lambda: MappingProxyType({}))
    metrics: MetricState = field(default_factory=MetricState)
    deliveries: Deliveries = ()  # the webhook deliveries acted on lately, to tell a replay
    status: StatusReport | None = None  # the status after the latest run, for the status page
    next_run: float | None = None  # when the worker's own triggers fall due next (epoch seconds), for the page

    def with_problem(self, source: Source, reason: Reason | None) -> Snapshot:
        """This snapshot with `source`'s problem set (None: cleared); the other sources' stay."""
        problems = {s: r for s, r in self.problems.items() if s is not source}
        if reason is not None:
            problems[source] = reason
        return replace(self, problems=MappingProxyType(problems))


def readiness(snapshot: Snapshot) -> tuple[bool, str]:
    """(ready, what /readyz says): not ready while any source has a problem (the first, in the order of Source),
    nor while the election has no result yet."""
    for source in Source:
        if source in snapshot.problems:
            return False, snapshot.problems[source].value
    if snapshot.role is Role.ELECTING:
        return False, Role.ELECTING.value
    return True, snapshot.role.value


def consul_reason(error: str) -> Reason:
    """The public reason for a failing Consul call."""
    return Reason.CONSUL_DENIED if "denied" in error else Reason.CONSUL_DOWN
