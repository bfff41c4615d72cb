"""Every refusal rule, in one place. Each is a pure function that returns the reason to refuse, or None.

`status`, `plan` and `sync` all take their verdicts from here, so they never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..model import DeletionBudget, Diff, Document, DocumentSize, HandEdit, Lineage, Position
from . import document, schemas


def position(live: Document | None, ours: str, counts: tuple[int, int] | None) -> Position:
    """Where the live document's commit stands against `ours`, from git's (ours-only, live-only) commit counts
    (None when the live commit is not in this clone)."""
    live_commit = document.built_from(live)
    if live is None:
        return Position(Lineage.ABSENT, None, ours)
    if not live_commit:
        return Position(Lineage.FOREIGN, None, ours)
    if counts is None:
        return Position(Lineage.UNKNOWN, live_commit, ours)
    behind, ahead = counts
    lineage = (Lineage.SAME if not (behind or ahead) else Lineage.BEHIND if not ahead
               else Lineage.AHEAD if not behind else Lineage.DIVERGED)
    return Position(lineage, live_commit, ours, behind, ahead)


def rollback(where: Position) -> str | None:
    """Writing `ours` over a document built from a newer commit, from one off its history (a rewritten history), or
    from one this clone cannot place."""
    live = (where.live_commit or "")[:12]
    if where.lineage is Lineage.AHEAD:
        return f"the live document was built from {live}, which is newer than {where.ours[:12]}"
    if where.lineage is Lineage.DIVERGED:
        return (f"the live document was built from {live}, which is not in the history of {where.ours[:12]} (the "
                "history was rewritten, by a force-push say: writing would drop what it held)")
    if where.lineage is Lineage.UNKNOWN:
        return (f"the live document was built from commit {live}, which this repository does not have; fetch it "
                "first, so that an older revision is not written over a newer one")
    return None


def overwrites(diff: Diff) -> bool:
    """Whether writing changes an attribute people choose, or removes a field. Adding fields and refreshing what
    extraction derives overwrite nothing a person chose."""
    chosen = set(schemas.chosen_attributes())
    return bool(diff.removed) or any(change.changes.keys() & chosen for change in diff.changed)


def edited_outside(live: Document | None) -> bool:
    """The live document is not what fieldsync wrote: it fails its own content hash, or has none."""
    return live is not None and not document.is_sealed(live)


def drift(live: Document | None, diff: Diff) -> str | None:
    """Writing over an edit made outside fieldsync, where the write would overwrite something a person chose."""
    if not edited_outside(live) or not overwrites(diff):
        return None
    return "the live document was changed outside fieldsync since fieldsync wrote it; syncing would overwrite it"


def _listing(edits: Sequence[HandEdit], limit: int = 10) -> str:
    shown = ", ".join(f"{e.label} (by hand {e.live!r}, in git {e.git!r})" for e in edits[:limit])
    return shown + (f" and {len(edits) - limit} more" if len(edits) > limit else "")


def hand_edits(policy: str, live: Document | None, diff: Diff, overwritten: Sequence[HandEdit],
               base_known: bool = True) -> str | None:
    """The drift policy's verdict on hand edits. Where no base can tell them apart (the live document names a
    commit this clone lacks), keep refuses to write anything people choose, and refuse any edit made outside
    fieldsync that the write would change or remove; otherwise refuse refuses to overwrite any hand edit
    (`overwritten`: those the write replaces). keep never refuses over a conflict (the hand edit's value stays
    until someone resolves it) and revert never refuses. A job's rewrite is no hand edit: it never refuses."""
    if policy == "keep" and not base_known and overwrites(diff):  # a sealed document may hold kept edits too
        return ("cannot tell hand edits apart: the commit the live document names is not in this clone, so what was "
                "changed by hand is unknown; fetch it, or write over whatever was changed with --force")
    if policy == "refuse" and overwritten:
        return (f"syncing would overwrite {len(overwritten)} hand edit(s): {_listing(overwritten)}; take them into git "
                "with `fieldsync import --from-kv`, or overwrite them with --force")
    if policy == "refuse" and not base_known:
        return drift(live, diff)
    return None


def deletions(removed: Sequence[str], live_count: int, budget: DeletionBudget) -> str | None:
    """Removing more fields than the budget allows: a server that answers with a partial config must not empty
    the document."""
    if len(removed) <= budget.count and len(removed) <= budget.fraction * live_count:
        return None
    shown = ", ".join(removed[:20]) + (" …" if len(removed) > 20 else "")
    return (f"syncing would remove {len(removed)} of {live_count} fields ({shown}), more than the deletion budget "
            f"allows ({budget.fraction:.0%} of the live fields, at most {budget.count}); a server may have answered "
            "with a partial config: check with `fieldsync extract`, and remove them on purpose with --allow-delete")


def contract(doc: Document) -> str | None:
    """A document that breaks schema/document.schema.json, the contract its readers rely on."""
    validator = schemas.validator("document")
    if validator.is_valid(doc):
        return None
    error = next(iter(validator.errors(doc)))
    where = "/".join(str(p) for p in error.absolute_path) or "the top level"
    return f"the document built breaks schema/document.schema.json at {where}: {error.message}"


SIZE_WARNING = 0.8  # of Consul's value limit


def size(length: int) -> str | None:
    """A value over Consul's limit, which Consul would refuse."""
    if length <= document.CONSUL_VALUE_LIMIT:
        return None
    return f"the document is {length:,} bytes, over Consul's {document.CONSUL_VALUE_LIMIT:,} byte value limit"


def room(size: DocumentSize) -> int | None:
    """About how many more fields fit under Consul's value limit, each as large as this document's average field
    (its record and its name in each server's entry; the document's fixed part counted in, so it errs low); None
    for a document without fields, which has no average."""
    if not size.fields:
        return None
    return max(0, (document.CONSUL_VALUE_LIMIT - size.length) * size.fields // size.length)


def size_headroom(size: DocumentSize) -> tuple[str, str] | None:
    """(severity, message) when a document comes near Consul's limit (warning above 80%) or goes over it (error)."""
    share = size.length / document.CONSUL_VALUE_LIMIT
    if share <= SIZE_WARNING:
        return None
    size_text = f"{'about ' if size.estimate else ''}{size.length:,} bytes, {share:.0%} of Consul's " \
                f"{document.CONSUL_VALUE_LIMIT:,} byte value limit"
    if share > 1:
        return "error", f"the document would be {size_text}: every sync would fail; remove or shorten fields"
    return "warning", f"the document would be {size_text} (over {SIZE_WARNING:.0%}); few fields are left"
