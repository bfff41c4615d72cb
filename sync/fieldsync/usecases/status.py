"""status: which commit the live document came from, where it stands against HEAD, drift, and the last run."""

from __future__ import annotations

from collections.abc import Sequence

from ..adapters import git
from ..adapters.consul import ConsulKV
from ..errors import FieldsyncError
from ..model import ServerSpec, StatusReport
from ..rules import document, guards
from . import runlog
from .extract import Fetch, fetch
from .inputs import gather
from .plan import prepare, utc_now


def status(*, repo: str, key: str, servers: Sequence[ServerSpec], kv: ConsulKV, fetch: Fetch = fetch) -> StatusReport:
    """The verdicts `sync` at HEAD would reach. Drift needs the plan (and so Prometheus) only when the live
    document was edited outside fieldsync; when the plan cannot be built, drift is reported as unknown."""
    repository = git.open_repo(repo)
    head = str(git.resolve_commit(repository, "HEAD").id)
    live = document.decode(kv.read(key)[0], key)
    live_commit = document.built_from(live)
    where = guards.position(live, head, git.ahead_behind(repository, head, live_commit) if live_commit else None)
    drift, unknown = None, None
    if guards.edited_outside(live):
        try:
            repository, inputs = gather(repo, "HEAD", servers, fetch)
            drift = prepare(repository, inputs, kv, key, utc_now()).drift
        except FieldsyncError as e:
            unknown = str(e)
    last = (runlog.read(kv, key) or {}).get("last")
    return StatusReport(key, live is not None, git.head_branch(repository), head, where, drift, unknown, last)
