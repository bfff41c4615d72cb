"""The data model: the records every layer passes around. A leaf: it imports nothing from fieldsync."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

DRIFT_POLICIES = ("keep", "refuse", "revert")
FIELDS_DIR = "fields"
CONFIG_FILE = "fieldsync.yaml"
FIELD_SUFFIX = ".yaml"
MAX_FIELD_FILE_BYTES = 64 * 1024

Record = dict[str, Any]  # one field record of the KV document
Document = dict[str, Any]  # the KV document (bare shape)


# --- inputs -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ServerSpec:
    """One Prometheus server: a base URL (HTTP API) or a config file/directory read directly."""

    name: str
    url: str | None = None
    file: str | None = None
    hostname: str = ""  # what the old backend's readers key this server by; see rules.config.hostname_of
    username: str | None = None
    password_file: str | None = None
    bearer_token_file: str | None = None
    ca_file: str | None = None
    timeout: float = 10.0  # seconds for the server's whole read in a run, retries included
    retries: int = 2
    max_bytes: int = 16 * 1024 * 1024  # largest answer accepted

    @property
    def location(self) -> str:
        return self.url or self.file or ""


@dataclass(frozen=True)
class DeletionBudget:
    """The most fields one sync may remove: at most `count`, and at most `fraction` of the live fields."""

    fraction: float = 0.25
    count: int = 10


DEFAULT_BUDGET = DeletionBudget()


@dataclass(frozen=True)
class Config:
    """fieldsync.yaml, with the schema's defaults filled in."""

    key: str
    lock_timeout: float
    servers: tuple[ServerSpec, ...] = ()
    drift: str = "keep"  # what sync does with hand edits of the live document: one of DRIFT_POLICIES
    state_prefix: str = "fieldsync/"  # where the lock and the run record live, apart from the document's folder
    deletion_budget: DeletionBudget = DeletionBudget()
    consul_addresses: tuple[str, ...] = ()  # Consul agents to try in order (CONSUL_HTTP_ADDR wins when set)
    order_ties: tuple[str, ...] = ()  # records with equal `order` are listed in this order, then by name


@dataclass(frozen=True)
class Entry:
    """One directory entry under a fields directory. kind: 'file', 'dir' or 'link'."""

    path: str
    kind: str
    blob_id: str = ""  # git blob id of the content; "" when over the size limit (never cached)
    read: Callable[[], bytes] = bytes
    stamp: tuple[int, ...] = ()  # disk files: (mtime_ns, size, inode), to know the blob id without reading


@dataclass(frozen=True, order=True)
class Problem:
    """One error (or warning), located at a 1-based line and column of a file."""

    path: str
    line: int
    column: int
    message: str
    severity: str = "error"  # error | warning; only errors make a file invalid

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def text(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.severity}: {self.message}"


@dataclass(frozen=True)
class FileResult:
    """What one field file holds: its name (when readable), where the name is, its problems, its data."""

    path: str
    name: str | None = None
    name_line: int = 1
    problems: tuple[Problem, ...] = ()
    doc: dict[str, Any] | None = field(default=None, compare=False)  # the content, when the file has no error

    @property
    def valid(self) -> bool:
        return not any(p.is_error for p in self.problems)


@dataclass(frozen=True)
class GitInfo:
    """The commit a document is built from."""

    commit: str
    ref: str
    committed_at: str

    def to_json(self) -> dict[str, str]:
        return {"commit": self.commit, "ref": self.ref, "committed_at": self.committed_at}


# --- extraction ---------------------------------------------------------------------------------------------------

# What Prometheus fills in for a relabel rule that does not say.
DEFAULT_REGEX = "(.*)"
DEFAULT_REPLACEMENT = "$1"


@dataclass(frozen=True)
class Rule:
    """A field as one relabel rule defines it."""

    name: str
    source_label: str
    regex: str
    replacement: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "source_label": self.source_label, "regex": self.regex,
                "replacement": self.replacement}


@dataclass(frozen=True)
class ServerStatus:
    """The outcome of extracting from one server."""

    name: str
    url: str
    success: bool
    error: str | None = None
    duration_ms: int = 0
    external_labels: dict[str, str] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    hostname: str = ""
    port: int | None = None
    files_count: int = 0

    def to_json(self) -> dict[str, Any]:
        """The entry of extraction_status.server_status[], with the keys the old backend reads."""
        return {"name": self.name, "hostname": self.hostname or self.name, "port": self.port, "url": self.url,
                "success": self.success, "from_cache": False, "files_count": self.files_count, "error": self.error,
                "duration_ms": self.duration_ms, "fields_count": len(self.rules),
                "external_labels": self.external_labels, "fields": [r.to_json() for r in self.rules]}


@dataclass(frozen=True)
class Discovery:
    """Where a field comes from: the winning rule and every server that has the field."""

    rule: Rule
    servers: tuple[str, ...]


# --- comparing ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FieldChange:
    name: str
    changes: dict[str, tuple[Any, Any]]  # attribute -> (before, after); a missing side is None


@dataclass(frozen=True)
class Diff:
    """Fields added and removed, chosen attributes changed, and what extraction derives refreshed (never a change)."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[FieldChange] = field(default_factory=list)
    refreshed: list[FieldChange] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    @property
    def refreshed_count(self) -> int:
        return sum(len(c.changes) for c in self.refreshed)


@dataclass(frozen=True)
class HandEdit:
    """A chosen attribute a person set, in the live document, to another value than git held when they set it (its
    base)."""

    field: str
    attribute: str
    base: Any
    live: Any
    git: Any = None  # what git holds now (the base, unless git changed it too)
    seen: str | None = None  # when a sync first saw it

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "attribute": self.attribute, "base": self.base, "live": self.live,
                "git": self.git, "seen": self.seen}

    @property
    def label(self) -> str:
        return f"{self.field}.{self.attribute}"


class Job(Enum):
    """The old backend's jobs that write the fields document (CONTRACT.md), as metrics and run records name them."""

    PREWARM = "prewarm"  # its startup prewarm: merges a fresh extraction into the stored records
    EXTRACTION = "extraction"  # force-extract and the empty-key fallback
    RESTORE = "restore"  # its restore of fields.backup (or .backup.history) into an empty key
    ORPHAN_CLEANUP = "orphan-cleanup"


@dataclass(frozen=True)
class JobWrite:
    """Which old-backend job wrote the live document last, by the value that names it (`source`, or the envelope's
    meta), and whether it filled an empty key (a refill holds nothing anyone typed since)."""

    job: Job
    named_by: str
    refill: bool


@dataclass(frozen=True)
class JobRewrite:
    """An attribute an old-backend job rewrote: what it wrote, and what sync writes back (git's value, or a person's
    pending edit)."""

    field: str
    attribute: str
    live: Any
    restored: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "attribute": self.attribute, "live": self.live, "restored": self.restored}

    @property
    def label(self) -> str:
        return f"{self.field}.{self.attribute}"


@dataclass(frozen=True)
class Written:
    """What fieldsync last wrote, as the run record keeps it: the commit, the document's content hash, and the hand
    edits the document held over that commit's field files (pending import, conflicts included)."""

    commit: str
    content_hash: str
    edits: tuple[HandEdit, ...] = ()


@dataclass(frozen=True)
class ReaderChanges:
    """What the old system's readers show differently, beyond field attributes: "discovered in" per field (before,
    after), external labels per site (by hostname), and the fields listed at another position."""

    discovered: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=dict)
    labels: dict[str, tuple[dict[str, str] | None, dict[str, str] | None]] = field(default_factory=dict)
    moved: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.discovered or self.labels or self.moved)


class MatchedBy(Enum):
    """How `init` told which entry of the live document's server_status[] is one of its servers."""

    ADDRESS_AND_PORT = "address and port"
    ADDRESS = "address"
    LABELS_AND_FIELDS = "external labels and fields"
    LABELS = "external labels"
    FIELDS = "fields"


@dataclass(frozen=True)
class ServerMatch:
    """A server of fieldsync.yaml and the hostname the old system knew it by (None: no entry matched it)."""

    server: str
    hostname: str | None
    how: MatchedBy | None = None


@dataclass(frozen=True)
class InitResult:
    commit: str
    key: str
    source: str  # where the workflows install fieldsync from, pinned
    matches: tuple[ServerMatch, ...] = ()  # each server against the live document's server_status[], when read
    unmatched: tuple[str, ...] = ()  # hostnames of the live document that no server matched
    note: str | None = None  # why the servers are named after their URLs, when no document named them


class Lineage(Enum):
    """Where the live document's commit stands against a commit of ours (the one synced, or HEAD)."""

    ABSENT = "absent"  # there is no live document
    FOREIGN = "foreign"  # the live document names no commit: fieldsync did not write it
    UNKNOWN = "unknown"  # its commit is not in this clone
    SAME = "same"
    BEHIND = "behind"  # ours descends from it: ours is newer
    AHEAD = "ahead"  # it descends from ours: writing ours would roll back
    DIVERGED = "diverged"


@dataclass(frozen=True)
class Position:
    """The live document's commit against ours, with the commit counts each side has that the other lacks."""

    lineage: Lineage
    live_commit: str | None
    ours: str
    behind: int = 0  # commits in ours, not in the live commit
    ahead: int = 0  # commits in the live commit, not in ours


# --- use case results ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Inputs:
    """Everything a sync or plan needs that does not come from Consul."""

    git: GitInfo
    overrides: dict[str, dict[str, Any]]
    statuses: list[ServerStatus]
    order_ties: tuple[str, ...] = ()  # how records with equal `order` are listed (fieldsync.yaml)


@dataclass(frozen=True)
class Plan:
    """The document a sync would write, against the live one, with every refusal that applies."""

    key: str
    inputs: Inputs
    live: Document | None
    index: int  # the live value's ModifyIndex (0: absent)
    doc: Document
    diff: Diff
    position: Position
    unchanged: bool  # same content as the live document: nothing to write
    rollback: str | None = None  # why writing would roll back, if it would
    drift: str | None = None  # why the drift policy refuses to write over hand edits, if it does
    policy: str = "keep"
    kept: tuple[HandEdit, ...] = ()  # hand edits the document keeps (policy keep), pending import into git
    conflicts: tuple[HandEdit, ...] = ()  # hand edits git also changed, to another value
    overwritten: tuple[HandEdit, ...] = ()  # hand edits the write replaces with git's values
    base_unknown: str | None = None  # why hand edits could not be told, if they could not
    rewritten_by: str | None = None  # a note naming the old backend's job that wrote the live document
    job: JobWrite | None = None  # the old backend's job that wrote the live document since fieldsync did, if one did
    job_rewrites: tuple[JobRewrite, ...] = ()  # what that job changed: never a hand edit, repaired by the write
    written: Written | None = None  # what the write leaves behind for the run record (None: nothing to record)
    recorded: Written | None = None  # what the run record said fieldsync last wrote, when the plan was made
    rebuilt: str | None = None  # a note on a key found empty: what the rebuild restored, or could not
    deletion: str | None = None  # why the write removes more fields than the deletion budget allows, if it does
    value: bytes = b""  # the document as it would be written (unchanged: the live value, which stays)
    readers: ReaderChanges = field(default_factory=ReaderChanges)  # what the old readers would show differently

    @property
    def changes(self) -> bool:
        """Whether the write changes anything a reader shows: a field, an attribute, discovery, labels, order."""
        return not (self.diff.empty and self.readers.empty)

    @property
    def size(self) -> DocumentSize:
        return DocumentSize(len(self.value), len(self.doc["fields"]), len(self.inputs.statuses))


class Outcome(str, Enum):
    """How a run ended: the `outcome` of the run record, the log and the runs metric (a str: JSON and labels take it
    as its value)."""

    WRITTEN = "written"
    UNCHANGED = "unchanged"
    DRY_RUN = "dry-run"
    REFUSED = "refused"  # a guard refused (exit 3): nothing written
    FAILED = "failed"  # an error: nothing written

    def __str__(self) -> str:
        return self.value

    @property
    def succeeded(self) -> bool:
        """Wrote, or found nothing to change: what the last-success time counts."""
        return self in (Outcome.WRITTEN, Outcome.UNCHANGED)


@dataclass(frozen=True)
class SyncReport:
    """What a sync did: written, unchanged, dry-run or refused (a failure is an error, not a report)."""

    plan: Plan
    outcome: Outcome
    reason: str | None = None  # why it refused
    index_after: int = 0  # the key's ModifyIndex after the write; 0 when it could not be read back
    attempts: int = 0
    warnings: tuple[str, ...] = ()  # what failed after the outcome was settled (the outcome stands)
    run: dict[str, Any] | None = None  # the run record written to the status key


class Standing(Enum):
    """Where the live document stands against git, each worse than the one before: `fieldsync status` exits
    with it."""

    IN_ORDER = "in order"  # built from HEAD, as sync at HEAD would leave it: nothing pending
    BEHIND = "behind"  # not from HEAD (behind, ahead, absent, not written by fieldsync), or rewritten by a job
    HAND_EDITS = "hand edits pending"  # hand edits kept in Consul, not yet in git
    CONFLICTS = "conflicts"  # hand edits git has changed too: each keeps its live value until resolved


@dataclass(frozen=True)
class StatusReport:
    """The live document against the repository, and the last recorded run."""

    key: str
    exists: bool
    branch: str
    head: str
    position: Position
    drift: str | None
    drift_unknown: str | None  # why drift could not be judged (the plan could not be built), if it could not
    last_run: dict[str, Any] | None
    kept: tuple[HandEdit, ...] = ()
    conflicts: tuple[HandEdit, ...] = ()
    rewritten_by: str | None = None
    last_run_problem: str | None = None  # why <key>.status could not be read, if it could not
    job: JobWrite | None = None
    job_rewrites: tuple[JobRewrite, ...] = ()  # what an old-backend job changed, which the next sync repairs
    rebuilt: str | None = None
    pending: tuple[HandEdit, ...] = ()  # hand edits not in git, whatever the policy does with them (conflicts apart)
    overview: dict[str, Any] = field(default_factory=dict)  # servers, fields, runs, document (rules/overview.py)

    @property
    def standing(self) -> Standing:
        if self.conflicts:
            return Standing.CONFLICTS
        if self.pending:
            return Standing.HAND_EDITS
        if self.position.lineage is not Lineage.SAME or self.job_rewrites:
            return Standing.BEHIND
        return Standing.IN_ORDER


@dataclass
class ImportResult:
    """What import took into field files: the hand edits, and the conflicts it left out (unless told a side)."""

    written: dict[str, str] = field(default_factory=dict)  # path -> new text
    edits: tuple[HandEdit, ...] = ()  # hand edits git did not change: written
    conflicts: tuple[HandEdit, ...] = ()  # also changed in git: written only with prefer "kv"
    prefer: str | None = None
    ignored: dict[str, list[str]] = field(default_factory=dict)  # field -> keys ignored
    not_in_document: list[str] = field(default_factory=list)
    branch: str | None = None
    commit: str | None = None  # on the branch, when one was asked for
    rewritten_by: str | None = None  # a note naming the old backend's job that wrote the document
    order_ties: tuple[str, ...] = ()  # recorded in fieldsync.yaml: how the document lists fields of equal order

    @property
    def unresolved(self) -> bool:
        return bool(self.conflicts) and self.prefer is None


@dataclass(frozen=True)
class DocumentSize:
    """A document's size against Consul's value limit: `fields` records, listed by `servers` servers' entries."""

    length: int
    fields: int
    servers: int
    estimate: bool = False  # from the field files alone (validate): extraction may add fields


@dataclass(frozen=True)
class Validation:
    problems: list[Problem]
    checked: int  # entries looked at
    size: DocumentSize | None = None  # of the document the field files make, when all of fields/ was checked

    @property
    def valid(self) -> bool:
        return not any(p.is_error for p in self.problems)


@dataclass(frozen=True)
class ScaffoldResult:
    statuses: list[ServerStatus]
    files: dict[str, str] = field(default_factory=dict)  # repository-relative path -> text
    branch: str | None = None
    commit: str | None = None  # on the branch, when one was asked for


@dataclass(frozen=True)
class FieldCommit:
    """One commit that changed a field's file, with the attribute-level change it made."""

    commit: str
    author: str
    when: str
    message: str
    kind: str  # added | modified | removed
    attributes: dict[str, tuple[Any, Any]]  # attribute -> (before, after); a missing side is None
