"""How a plan reads: text for terminals, markdown for $GITHUB_STEP_SUMMARY, JSON for scripts."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .syncer import Plan


def value_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _cell(value: Any) -> str:
    return "`" + value_text(value).replace("|", "\\|") + "`"


def warnings(plan: Plan) -> list[str]:
    notes = [f"{s.name} failed ({s.error}); fields only it had are carried over from the live document"
             for s in plan.inputs.statuses if not s.success]
    if plan.drift:
        notes.append("the live document was edited outside fieldsync (drift): sync refuses without --force; "
                     "`fieldsync import --from-kv` takes the edit into git")
    if plan.rollback:
        notes.append(f"{plan.rollback}: sync refuses without --allow-rollback")
    return notes


def summary(plan: Plan) -> str:
    d = plan.diff
    if d.empty:
        return "No changes: the live document's fields already match."
    return f"{len(d.added)} to add, {len(d.changed)} to change, {len(d.removed)} to remove."


def render_plan(plan: Plan, fmt: str) -> str:
    git, d = plan.inputs.git, plan.diff
    live = plan.live_commit[:12] if plan.live_commit else ("none" if plan.live is None else "unknown commit")
    if fmt == "json":
        return json.dumps({
            "key": plan.key, "commit": git.commit, "ref": git.ref, "live_commit": plan.live_commit,
            "changes": not d.empty, "added": d.added, "removed": d.removed,
            "changed": {c.name: {k: {"before": a, "after": b} for k, (a, b) in c.changes.items()} for c in d.changed},
            "drift": plan.drift, "rollback": plan.rollback, "warnings": warnings(plan),
        }, indent=2, ensure_ascii=False)
    if fmt == "markdown":
        lines = [f"### fieldsync plan for `{plan.key}`", "",
                 f"Commit `{git.commit[:12]}` ({git.ref}) against the live document from `{live}`.", "",
                 f"**{summary(plan)}**"]
        if not d.empty:
            lines += ["", "| field | attribute | before | after |", "| --- | --- | --- | --- |"]
            lines += [f"| `{n}` | *(new field)* | | |" for n in d.added]
            lines += [f"| `{c.name}` | `{k}` | {_cell(a)} | {_cell(b)} |" for c in d.changed for k, (a, b) in
                      c.changes.items()]
            lines += [f"| `{n}` | *(removed)* | | |" for n in d.removed]
        lines += [f"> **Warning:** {w}" for w in warnings(plan)]
        return "\n".join(lines)
    lines = [f"Plan for {plan.key} at {git.commit[:12]} ({git.ref}); live document from {live}"]
    lines += [f"  + {n}" for n in d.added]
    for c in d.changed:
        lines.append(f"  ~ {c.name}")
        lines += [f"      {k}: {value_text(a)} -> {value_text(b)}" for k, (a, b) in c.changes.items()]
    lines += [f"  - {n}" for n in d.removed]
    lines += [f"Warning: {w}" for w in warnings(plan)]
    return "\n".join([*lines, summary(plan)])
