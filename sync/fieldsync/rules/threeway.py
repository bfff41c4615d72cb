"""Three-way: who changed what in the live document since fieldsync wrote it, against what git changed since.

A document fieldsync writes names its commit and lists the hand edits it holds over that commit's field files, so
any copy of it, written back by the old UI or rewritten by an old-backend job, still says which version of
fieldsync's it started from: the *ancestor*. Every chosen attribute whose live value (read as the old UI reads it)
differs from the ancestor's was changed since: by an old-backend job when the change has that job's shape (a *job
rewrite*, repaired), otherwise by a person (a *hand edit*). What was not changed since keeps what fieldsync last
wrote, so a stale copy written back never undoes a later edit, and pending hand edits outlive a wiped key.

A hand edit's *base* is what git held for the attribute when the person changed it; it *conflicts* when git has
changed the attribute since, to another value. A document with no fieldsync provenance (adoption) has the defaults
as its ancestor: every customization is a hand edit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..model import HandEdit, JobRewrite, JobWrite, Record
from . import legacy, schemas
from .effective import baseline, baseline_of, effective

Overrides = Mapping[str, Mapping[str, Any]]  # field name -> attributes its YAML sets
DELETED = "(field deleted in git)"


def value_in(overrides: Overrides, name: str, attribute: str) -> Any:
    """What a set of field files produces for one attribute of one field."""
    chosen = overrides.get(name, {})
    return chosen[attribute] if attribute in chosen else baseline_of(name, attribute)


@dataclass(frozen=True)
class Version:
    """A document fieldsync wrote, as far as people's choices go: its commit's field files, and the hand edits it
    held over them."""

    overrides: Overrides = field(default_factory=dict)
    held: tuple[HandEdit, ...] = ()
    _values: dict[tuple[str, str], Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_values", {(e.field, e.attribute): e.live for e in self.held})

    def value(self, name: str, attribute: str) -> Any:
        key = (name, attribute)
        return self._values[key] if key in self._values else value_in(self.overrides, name, attribute)


def observe(live: Iterable[Record], ancestor: Version, pending: Sequence[HandEdit], job: JobWrite | None,
            now: str) -> tuple[list[HandEdit], list[JobRewrite]]:
    """(the hand edits pending after what happened to the live records since `ancestor`, the job rewrites).
    `pending` are those fieldsync last wrote; what nobody changed since the ancestor keeps them, whatever the live
    value, and a job's change never counts as a person's. A person setting an attribute back to its base ends the
    edit."""
    attributes = schemas.chosen_attributes()
    earlier = {(e.field, e.attribute): e for e in pending}
    changed: dict[tuple[str, str], HandEdit] = {}
    rewrites = []
    for record in live:
        name = str(record["name"])
        default, extracted = baseline(name), bool(record.get("source_label"))
        for attribute in attributes:
            now_value = effective(record, attribute, default)
            if now_value == ancestor.value(name, attribute):
                continue
            if job is not None and legacy.rewrote(job, name, attribute, now_value, extracted):
                rewrites.append(JobRewrite(name, attribute, now_value))
                continue
            before = earlier.get((name, attribute))
            if before is not None and before.live == now_value:
                changed[(name, attribute)] = before
            else:
                base = before.base if before is not None else value_in(ancestor.overrides, name, attribute)
                changed[(name, attribute)] = HandEdit(name, attribute, base, now_value, seen=now)
    kept = [e for key, e in earlier.items() if key not in changed]
    return kept + [e for e in changed.values() if e.live != e.base], rewrites


def git_value(git: Overrides, deleted: frozenset[str], name: str, attribute: str) -> Any:
    """What git holds now for an attribute; a field whose file git deleted reads as deleted."""
    return DELETED if name in deleted else value_in(git, name, attribute)


def reconcile(edits: Iterable[HandEdit], git: Overrides,
              deleted: frozenset[str] = frozenset()) -> tuple[list[HandEdit], list[HandEdit]]:
    """(hand edits git did not change since their base, conflicts), each with git's value. A hand edit git made
    too, to the same value, is neither: git holds it. `deleted`: fields whose files git deleted since."""
    kept, conflicts = [], []
    for edit in edits:
        theirs = git_value(git, deleted, edit.field, edit.attribute)
        if theirs == edit.base:
            kept.append(replace(edit, git=theirs))
        elif theirs != edit.live:
            conflicts.append(replace(edit, git=theirs))
    return kept, conflicts


def differences(before: Overrides, after: Overrides) -> list[tuple[str, str, Any]]:
    """(field, attribute, value after) of every chosen attribute that two sets of field files give different
    values, for the fields `after` has."""
    return [(name, attribute, value_in(after, name, attribute)) for name in sorted(after)
            for attribute in schemas.chosen_attributes()
            if value_in(after, name, attribute) != value_in(before, name, attribute)]
