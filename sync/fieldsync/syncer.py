"""sync: fields at a commit, merged over what Prometheus yields, written to Consul KV with check-and-set."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from . import document, schemas, sources
from .config import ServerSpec
from .consulkv import ConsulKV
from .diff import Diff, diff_fields
from .errors import FieldsyncError, Refused
from .extract import ServerStatus, extract_all
from .merge import discover, merge
from .validate import validate

CAS_ATTEMPTS = 8


@dataclass
class SyncReport:
    key: str
    git: document.GitInfo
    statuses: list[ServerStatus] = field(default_factory=list)
    diff: Diff = field(default_factory=Diff)
    total: int = 0
    outcome: str = ""  # written | unchanged | dry-run
    index: tuple[int, int] = (0, 0)  # ModifyIndex before and after
    attempts: int = 0

    def render(self) -> str:
        ok = [s for s in self.statuses if s.success]
        lines = [f"commit   {self.git.commit[:12]} ({self.git.ref}, {self.git.committed_at})",
                 f"servers  {len(ok)} ok, {len(self.statuses) - len(ok)} failed"]
        for s in self.statuses:
            state = f"ok      {len(s.rules):4d} fields" if s.success else f"FAILED  {s.error}"
            lines.append(f"  {s.name:<24} {state}  ({s.duration_ms} ms)")
        d = self.diff
        lines.append(f"fields   {self.total} total: {len(d.added)} added, {len(d.changed)} changed, "
                     f"{len(d.removed)} removed")
        for label, names in (("added", d.added), ("changed", [c.name for c in d.changed]), ("removed", d.removed)):
            if names:
                lines.append(f"  {label + ':':<9}{', '.join(names[:20])}{' …' if len(names) > 20 else ''}")
        result = {"written": f"written to {self.key} (ModifyIndex {self.index[0]} -> {self.index[1]})",
                  "unchanged": f"unchanged: {self.key} already holds this content; nothing written",
                  "dry-run": f"dry run: would write {self.key}; nothing written"}[self.outcome]
        return "\n".join(lines + [f"result   {result}"])


def git_info(repo: Any, commit: Any, rev: str) -> document.GitInfo:
    ref = rev  # a sha or an expression such as HEAD~2 stays as given
    with contextlib.suppress(KeyError, ValueError):
        ref = repo.head.name if rev == "HEAD" and not repo.head_is_detached else repo.lookup_reference_dwim(rev).name
    offset = timezone(timedelta(minutes=commit.commit_time_offset))
    when = datetime.fromtimestamp(commit.commit_time, tz=offset).isoformat()
    return document.GitInfo(str(commit.id), ref, when)


def fields_at(repo: Any, commit: Any) -> dict[str, dict[str, Any]]:
    """The valid field overrides of a commit; any problem refuses the sync before Consul is touched."""
    problems, results = validate(sources.git_entries(repo, commit, [sources.FIELDS_DIR]))
    if problems:
        listing = "\n".join(p.text() for p in problems[:50])
        more = f"\n… and {len(problems) - 50} more" if len(problems) > 50 else ""
        raise FieldsyncError(f"fields at {str(commit.id)[:12]} are invalid; nothing written:\n{listing}{more}")
    return {r.name: r.doc for r in results if r.name is not None and r.doc is not None}


def check_not_rollback(repo: Any, target: str, live: dict[str, Any] | None) -> None:
    """Refuse to replace a document built from a descendant of the target commit."""
    import pygit2

    built_from = ((live or {}).get("git") or {}).get("commit")
    if not built_from or built_from == target:
        return
    try:
        live_oid = pygit2.Oid(hex=built_from)
        newer = repo.descendant_of(live_oid, pygit2.Oid(hex=target))
    except (ValueError, KeyError, pygit2.GitError):
        raise Refused(f"the live document was built from commit {built_from[:12]}, which this repository does "
                      "not have; fetch it first, so that an older revision is not written over a newer one") from None
    if newer:
        raise Refused(f"the live document was built from {built_from[:12]}, which is newer than "
                      f"{target[:12]}; refusing to roll back")


def build_document(overrides: dict[str, dict[str, Any]], statuses: list[ServerStatus], live: dict[str, Any] | None,
                   git: document.GitInfo, now: str) -> dict[str, Any]:
    properties = schemas.field_properties()
    discovered = discover(statuses, (live or {}).get("fields") or [])
    records = merge(overrides, discovered, schemas.field_defaults(), ["name", *properties])
    return document.build(records, statuses, git, now)


def sync(repo_path: str, rev: str, key: str, servers: Sequence[ServerSpec], kv: ConsulKV,
         fetch: Callable[[ServerSpec], dict[str, Any]], dry_run: bool = False, lock_timeout: float = 60.0,
         now: Callable[[], str] = lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")) -> SyncReport:
    """Run one sync; raises FieldsyncError (exit 1) or Refused (exit 3) without writing anything."""
    if not servers:
        raise FieldsyncError("no Prometheus server given: use --prometheus URL|FILE or the config file")
    repo = sources.open_repo(repo_path)
    commit = sources.resolve_commit(repo, rev)
    report = SyncReport(key, git_info(repo, commit, rev))
    overrides = fields_at(repo, commit)
    report.statuses = extract_all(servers, fetch)
    if not any(s.success for s in report.statuses):
        errors = "; ".join(f"{s.name}: {s.error}" for s in report.statuses)
        raise FieldsyncError(f"no Prometheus server answered, nothing written ({errors})")

    def attempt() -> bool:
        raw, index = kv.read(key)
        live = document.decode(raw, key)
        check_not_rollback(repo, report.git.commit, live)
        doc = build_document(overrides, report.statuses, live, report.git, now())
        report.diff = diff_fields((live or {}).get("fields") or [], doc["fields"])
        report.total, report.index = doc["total_fields"], (index, index)
        if document.content(live) == document.content(doc):
            report.outcome = "unchanged"
            return True
        value = document.encode(doc)
        if len(value) > document.CONSUL_VALUE_LIMIT:
            raise FieldsyncError(f"the document is {len(value):,} bytes, over Consul's {document.CONSUL_VALUE_LIMIT:,}"
                                 " byte value limit; nothing written")
        if dry_run:
            report.outcome = "dry-run"
            return True
        if not kv.write_cas(key, value, index):
            return False  # someone wrote in between: read again and rebuild
        report.outcome, report.index = "written", (index, kv.read(key)[1])
        return True

    if dry_run:
        attempt()
        return report
    with kv.lock(f"{key}.lock", lock_timeout):
        for report.attempts in range(1, CAS_ATTEMPTS + 1):
            if attempt():
                return report
    raise FieldsyncError(f"{key} kept changing during {CAS_ATTEMPTS} check-and-set attempts; nothing written")
