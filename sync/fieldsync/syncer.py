"""sync and plan: fields at a commit, merged over what Prometheus yields, compared with (and written to) Consul KV."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from . import document, runstatus, schemas, sources
from .config import NO_SERVERS, ServerSpec
from .consulkv import ConsulKV
from .diff import Diff, diff_fields
from .errors import FieldsyncError, Refused
from .extract import ServerStatus, extract_all
from .merge import discover, merge
from .planview import render_plan
from .validate import validate

CAS_ATTEMPTS = 8
Fetch = Callable[[ServerSpec], dict[str, Any]]


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def git_info(repo: Any, commit: Any, rev: str) -> document.GitInfo:
    ref = rev  # a sha or an expression such as HEAD~2 stays as given
    with contextlib.suppress(KeyError, ValueError):
        ref = repo.head.name if rev == "HEAD" and not repo.head_is_detached else repo.lookup_reference_dwim(rev).name
    when = sources.local_time(commit.commit_time, commit.commit_time_offset).isoformat()
    return document.GitInfo(str(commit.id), ref, when)


def fields_at(entries: list[sources.Entry], where: str) -> dict[str, dict[str, Any]]:
    """The valid field overrides among `entries`; any problem refuses the sync before Consul is touched."""
    problems, results = validate(entries)
    if problems:
        listing = "\n".join(p.text() for p in problems[:50])
        more = f"\n… and {len(problems) - 50} more" if len(problems) > 50 else ""
        raise FieldsyncError(f"fields at {where} are invalid; nothing written:\n{listing}{more}")
    return {r.name: r.doc for r in results if r.name is not None and r.doc is not None}


def rollback_from(repo: Any, target: str, live: dict[str, Any] | None) -> str | None:
    """Why writing `target` over `live` would roll back, or None when it would not."""
    import pygit2

    built_from = document.built_from(live)
    if not built_from or built_from == target:
        return None
    try:
        newer = repo.descendant_of(pygit2.Oid(hex=built_from), pygit2.Oid(hex=target))
    except (ValueError, KeyError, pygit2.GitError):
        return (f"the live document was built from commit {built_from[:12]}, which this repository does not have; "
                "fetch it first, so that an older revision is not written over a newer one")
    return f"the live document was built from {built_from[:12]}, which is newer than {target[:12]}" if newer else None


def build_document(overrides: dict[str, dict[str, Any]], statuses: list[ServerStatus], live: dict[str, Any] | None,
                   git: document.GitInfo, now: str) -> dict[str, Any]:
    discovered = discover(statuses, (live or {}).get("fields") or [])
    records = merge(overrides, discovered, schemas.field_defaults(), ["name", *schemas.field_properties()])
    return document.seal(document.build(records, statuses, git, now))


@dataclass
class Inputs:
    """Everything a sync or plan needs that does not come from Consul."""

    repo: Any
    git: document.GitInfo
    overrides: dict[str, dict[str, Any]]
    statuses: list[ServerStatus]


def gather(repo_path: str, rev: str, servers: Sequence[ServerSpec], fetch: Fetch, worktree: bool = False) -> Inputs:
    """Read the fields at `rev` (validated: any problem stops here, before Consul) and extract from every server.

    With `worktree`, the fields are the files on disk (for plan), with `rev` as the commit they stand on.
    """
    if not servers:
        raise FieldsyncError(NO_SERVERS)
    repo = sources.open_repo(repo_path)
    commit = sources.resolve_commit(repo, rev)
    if worktree:
        directory = os.path.join(repo.workdir or repo_path, sources.FIELDS_DIR)
        overrides = fields_at(sources.worktree_entries([directory]), "the work tree")
    else:
        overrides = fields_at(sources.git_entries(repo, commit, [sources.FIELDS_DIR]), str(commit.id)[:12])
    statuses = extract_all(servers, fetch)
    return Inputs(repo, git_info(repo, commit, rev), overrides, statuses)


def require_answers(inputs: Inputs) -> None:
    if not any(s.success for s in inputs.statuses):
        errors = "; ".join(f"{s.name}: {s.error}" for s in inputs.statuses)
        raise FieldsyncError(f"no Prometheus server answered, nothing written ({errors})")


@dataclass
class Plan:
    """The document a sync would write, against the live one."""

    key: str
    inputs: Inputs
    live: dict[str, Any] | None
    index: int
    doc: dict[str, Any]
    diff: Diff
    rollback: str | None  # why it would roll back
    drift: bool  # the live document was edited outside fieldsync, and writing would change or remove its fields

    @property
    def unchanged(self) -> bool:
        return document.content(self.live) == document.content(self.doc)

    @property
    def live_commit(self) -> str | None:
        return document.built_from(self.live)


def prepare(inputs: Inputs, kv: ConsulKV, key: str, now: str) -> Plan:
    raw, index = kv.read(key)
    live = document.decode(raw, key)
    doc = build_document(inputs.overrides, inputs.statuses, live, inputs.git, now)
    diff = diff_fields((live or {}).get("fields") or [], doc["fields"])
    # Adding fields or refreshing what extraction derives overwrites nothing a person chose; changing a chosen
    # attribute, or removing a field, of a document edited by hand would.
    chosen = schemas.field_properties().keys()
    overwrites = bool(diff.removed) or any(change.changes.keys() & chosen for change in diff.changed)
    drift = live is not None and not document.is_sealed(live) and overwrites
    return Plan(key, inputs, live, index, doc, diff, rollback_from(inputs.repo, inputs.git.commit, live), drift)


@dataclass
class SyncReport:
    plan: Plan
    outcome: str = ""  # written | unchanged | dry-run
    index_after: int = 0
    attempts: int = 0

    def render(self) -> str:
        plan, git = self.plan, self.plan.inputs.git
        statuses = plan.inputs.statuses
        ok = [s for s in statuses if s.success]
        lines = [f"commit   {git.commit[:12]} ({git.ref}, {git.committed_at})",
                 f"servers  {len(ok)} ok, {len(statuses) - len(ok)} failed"]
        for s in statuses:
            state = f"ok      {len(s.rules):4d} fields" if s.success else f"FAILED  {s.error}"
            lines.append(f"  {s.name:<24} {state}  ({s.duration_ms} ms)")
        d = plan.diff
        lines.append(f"fields   {plan.doc['total_fields']} total: {len(d.added)} added, {len(d.changed)} changed, "
                     f"{len(d.removed)} removed")
        for label, names in (("added", d.added), ("changed", [c.name for c in d.changed]), ("removed", d.removed)):
            if names:
                lines.append(f"  {label + ':':<9}{', '.join(names[:20])}{' …' if len(names) > 20 else ''}")
        result = {"written": f"written to {plan.key} (ModifyIndex {plan.index} -> {self.index_after})",
                  "unchanged": f"unchanged: {plan.key} already holds this content; nothing written",
                  "dry-run": f"dry run: would write {plan.key}; nothing written"}[self.outcome]
        return "\n".join(lines + [f"result   {result}"])


def sync(repo_path: str, rev: str, key: str, servers: Sequence[ServerSpec], kv: ConsulKV, fetch: Fetch,
         dry_run: bool = False, lock_timeout: float = 60.0, allow_rollback: bool = False, force: bool = False,
         now: Callable[[], str] = utc_now) -> SyncReport:
    """Run one sync; raises FieldsyncError (exit 1) or Refused (exit 3) without writing the document."""
    inputs = gather(repo_path, rev, servers, fetch)

    def attempt() -> SyncReport | None:
        plan = prepare(inputs, kv, key, now())
        if plan.rollback and not allow_rollback:
            raise Refused(f"{plan.rollback}; refusing to roll back (restore on purpose with --allow-rollback)")
        if plan.drift and not force:
            raise Refused("the live document was changed outside fieldsync since fieldsync wrote it; syncing would "
                          f"overwrite this:\n{render_plan(plan, 'text')}\nTake the change into git with "
                          "`fieldsync import --from-kv` and commit it, or overwrite it with --force.")
        if plan.unchanged:
            return SyncReport(plan, "unchanged", plan.index)
        value = document.encode(plan.doc)
        if len(value) > document.CONSUL_VALUE_LIMIT:
            raise FieldsyncError(f"the document is {len(value):,} bytes, over Consul's {document.CONSUL_VALUE_LIMIT:,}"
                                 " byte value limit; nothing written")
        if dry_run:
            return SyncReport(plan, "dry-run", plan.index)
        if not kv.write_cas(key, value, plan.index):
            return None  # someone wrote in between: read again and rebuild
        return SyncReport(plan, "written", kv.read(key)[1])

    if dry_run:
        require_answers(inputs)
        report = attempt()
        assert report is not None
        return report
    try:
        require_answers(inputs)
        with kv.lock(f"{key}.lock", lock_timeout):
            for number in range(1, CAS_ATTEMPTS + 1):
                report = attempt()
                if report is not None:
                    report.attempts = number
                    runstatus.record(kv, key, runstatus.entry(report.outcome, None, inputs, report, now()))
                    return report
        raise FieldsyncError(f"{key} kept changing during {CAS_ATTEMPTS} check-and-set attempts; nothing written")
    except FieldsyncError as e:
        outcome = "refused" if isinstance(e, Refused) else "failed"
        runstatus.record(kv, key, runstatus.entry(outcome, str(e), inputs, None, now()))
        raise
