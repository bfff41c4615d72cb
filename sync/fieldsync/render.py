"""How results read: text for terminals, markdown for $GITHUB_STEP_SUMMARY, GitHub workflow commands, JSON for
scripts. Every renderer takes a result from fieldsync.model and returns text; none does I/O."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import asdict
from typing import Any

from .errors import FieldsyncError
from .model import (
    DocumentSize,
    FieldCommit,
    HandEdit,
    ImportResult,
    InitResult,
    JobRewrite,
    JobWrite,
    Lineage,
    Outcome,
    Plan,
    Position,
    Problem,
    ReaderChanges,
    ScaffoldResult,
    ServerStatus,
    Standing,
    StatusReport,
    SyncReport,
    Validation,
)
from .rules import document, guards, overview

PROBLEM_FORMATS = ("text", "github", "json")


def value_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


# --- validate -----------------------------------------------------------------------------------------------------

def _github(problem: Problem) -> str:
    def esc(value: str, prop: bool = False) -> str:
        value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return value.replace(":", "%3A").replace(",", "%2C") if prop else value

    return (f"::{problem.severity} file={esc(problem.path, True)},line={problem.line},col={problem.column},"
            f"title=fieldsync::{esc(problem.message)}")


def validation(result: Validation, fmt: str) -> str:
    """Problems (already sorted), a one-line summary, and the document's size when the whole of fields/ was read."""
    found, checked = result.problems, result.checked
    errors = [p for p in found if p.is_error]
    if fmt == "json":
        return json.dumps({"valid": not errors, "files_checked": checked, "problems": [asdict(p) for p in found],
                           "document": size_json(result.size) if result.size else None}, indent=2)
    lines = [_github(p) if fmt == "github" else p.text() for p in found]
    warnings = len(found) - len(errors)
    noted = f", {warnings} warning(s)" if warnings else ""
    if errors:
        lines.append(f"{len(errors)} problem(s) in {len({p.path for p in errors})} file(s){noted}; "
                     f"{checked} file(s) checked")
    else:
        lines.append(f"{checked} field file(s) valid{noted}")
    if result.size:
        lines.append(size_line(result.size))
    return "\n".join(lines)


# --- extract ------------------------------------------------------------------------------------------------------

def extraction(statuses: list[ServerStatus], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([s.to_json() for s in statuses], indent=2)
    lines = []
    for s in statuses:
        labels = ", ".join(f"{k}={v}" for k, v in s.external_labels.items()) or "none"
        head = f"ok, {len(s.rules)} fields, external labels: {labels}" if s.success else f"FAILED: {s.error}"
        lines.append(f"{s.name} ({s.url}): {head} ({s.duration_ms} ms)")
        lines += [f"  {r.name:<24} {r.source_label:<48} {r.regex} -> {r.replacement}" for r in s.rules]
    return "\n".join(lines)


# --- plan ---------------------------------------------------------------------------------------------------------

def _cell(value: Any) -> str:
    return "`" + value_text(value).replace("|", "\\|") + "`"


def _edits(edits: tuple[HandEdit, ...], limit: int = 20) -> str:
    shown = ", ".join(e.label for e in edits[:limit])
    return shown + (" …" if len(edits) > limit else "")


def conflict_text(edit: HandEdit) -> str:
    return (f"{edit.label}: by hand {value_text(edit.live)}, in git {value_text(edit.git)} (both changed since "
            f"{value_text(edit.base)})")


def job_rewrite_line(job: JobWrite, rewrites: tuple[JobRewrite, ...], limit: int = 20) -> str:
    """The attributes an old-backend job rewrote, with what the job wrote."""
    from .rules import legacy  # not at the top: `validate`, the pre-commit path, needs none of what it imports

    shown = ", ".join(f"{r.label} ({value_text(r.live)})" for r in rewrites[:limit])
    more = f" and {len(rewrites) - limit} more" if len(rewrites) > limit else ""
    return (f"{len(rewrites)} attribute(s) rewritten by the old backend's {legacy.describe(job)}, not by a person: "
            f"{shown}{more}")


def hand_edit_lines(plan: Plan) -> list[str]:
    """What the drift policy does with the live document's hand edits, one line each kind."""
    lines = []
    if plan.job is not None and plan.job_rewrites:
        lines.append(f"{job_rewrite_line(plan.job, plan.job_rewrites)}; repaired (git's value, or the pending hand "
                     "edit)")
    if plan.kept:
        lines.append(f"{len(plan.kept)} hand edit(s) kept, pending import (`fieldsync import --from-kv`): "
                     f"{_edits(plan.kept)}")
    if plan.conflicts and plan.policy == "keep":
        held = ("git's value written (--force)" if plan.overwritten else
                "each keeps its live value until resolved: `fieldsync import --from-kv --prefer kv|git`")
        lines.append(f"{len(plan.conflicts)} hand edit(s) conflict with git ({held}): {_edits(plan.conflicts)}")
    if plan.overwritten and plan.policy != "keep":
        verb = ("reverted to git's values (recorded in the run record)" if plan.policy == "revert"
                else "in the way (drift: refuse writes over them only with --force)")
        lines.append(f"{len(plan.overwritten)} hand edit(s) {verb}: {_edits(plan.overwritten)}")
    if plan.base_unknown:
        lines.append(f"hand edits cannot be told apart: {plan.base_unknown}")
    if plan.rebuilt:
        lines.append(plan.rebuilt)
    return lines


def _plan_warnings(plan: Plan) -> list[str]:
    notes = [f"{s.name} failed ({s.error}); fields only it had are carried over from the live document"
             for s in plan.inputs.statuses if not s.success]
    if plan.rewritten_by:
        notes.append(plan.rewritten_by)
    if plan.drift and plan.policy == "refuse":
        notes.append("the live document was edited outside fieldsync (drift): sync refuses without --force; "
                     "`fieldsync import --from-kv` takes the edit into git")
    elif plan.drift:
        notes.append(f"sync refuses: {plan.drift}")
    if plan.rollback:
        notes.append(f"{plan.rollback}: sync refuses without --allow-rollback")
    if plan.deletion:
        notes.append(f"sync refuses: {plan.deletion}")
    headroom = guards.size_headroom(plan.size)
    if headroom:
        notes.append(headroom[1])
    return notes


def size_line(size: DocumentSize) -> str:
    """'Document: 460,123 bytes, 88% of Consul's 524,288 byte limit; room for ~61 more fields at 20 servers.'"""
    room = guards.room(size)
    return (f"Document: {'about ' if size.estimate else ''}{size.length:,} bytes, "
            f"{size.length / document.CONSUL_VALUE_LIMIT:.0%} of Consul's {document.CONSUL_VALUE_LIMIT:,} byte limit"
            + (f"; room for ~{room:,} more fields at {size.servers} server(s)." if room is not None else "."))


def size_json(size: DocumentSize) -> dict[str, Any]:
    return {"bytes": size.length, "limit": document.CONSUL_VALUE_LIMIT, "fields": size.fields,
            "servers": size.servers, "room_for_fields": guards.room(size), "estimate": size.estimate}


def reader_lines(changes: ReaderChanges, limit: int = 20) -> list[str]:
    """What the old system's readers would show differently, beyond field attributes, a line each."""
    lines = [f"discovered in: {name}: {value_text(list(a))} -> {value_text(list(b))}"
             for name, (a, b) in list(changes.discovered.items())[:limit]]
    if len(changes.discovered) > limit:
        lines.append(f"discovered in: … and {len(changes.discovered) - limit} more field(s)")
    lines += [f"external labels of site {host}: {value_text(a)} -> {value_text(b)}"
              for host, (a, b) in changes.labels.items()]
    if changes.moved:
        shown = ", ".join(changes.moved[:limit]) + (" …" if len(changes.moved) > limit else "")
        lines.append(f"listing order: {len(changes.moved)} field(s) listed at another position: {shown}")
    return lines


def _plan_summary(plan: Plan) -> str:
    """One line that is true of what sync would do: "No changes" alone means sync writes nothing."""
    d, readers = plan.diff, plan.readers
    refreshed = (f" ({d.refreshed_count} extracted attribute(s) refreshed from Prometheus)"
                 if d.refreshed_count else "")
    if plan.unchanged:
        return "No changes: the live document already holds this content; sync writes nothing."
    if not plan.changes:
        return ("No changes to fields: sync rewrites the document only for what extraction derives"
                f"{refreshed or ' (server entries, external labels)'}.")
    seen = [f"{len(readers.discovered)} field(s) discovered elsewhere" if readers.discovered else "",
            f"{len(readers.labels)} site(s) with other external labels" if readers.labels else "",
            f"{len(readers.moved)} field(s) listed elsewhere" if readers.moved else ""]
    shown = "; the old UI would show " + ", ".join(filter(None, seen)) if not readers.empty else ""
    return f"{len(d.added)} to add, {len(d.changed)} to change, {len(d.removed)} to remove{refreshed}{shown}."


def plan(result: Plan, fmt: str) -> str:
    git, d = result.inputs.git, result.diff
    live_commit = result.position.live_commit
    live = live_commit[:12] if live_commit else ("none" if result.live is None else "unknown commit")
    if fmt == "json":
        return json.dumps({
            "key": result.key, "commit": git.commit, "ref": git.ref, "live_commit": live_commit,
            "changes": result.changes, "writes": not result.unchanged, "size": result.size.length,
            "document": size_json(result.size),
            "added": d.added, "removed": d.removed,
            "changed": {c.name: {k: {"before": a, "after": b} for k, (a, b) in c.changes.items()} for c in d.changed},
            "refreshed": {c.name: {k: {"before": a, "after": b} for k, (a, b) in c.changes.items()}
                          for c in d.refreshed},
            "drift": bool(result.drift), "drift_policy": result.policy, "rollback": result.rollback,
            "hand_edits_kept": [e.to_json() for e in result.kept],
            "conflicts": [e.to_json() for e in result.conflicts],
            "hand_edits_overwritten": [e.to_json() for e in result.overwritten],
            "job": result.job.job.value if result.job else None,
            "job_rewrites": [r.to_json() for r in result.job_rewrites],
            "old_readers": {"discovered_in": {n: {"before": list(a), "after": list(b)}
                                              for n, (a, b) in result.readers.discovered.items()},
                            "external_labels": {h: {"before": a, "after": b}
                                                for h, (a, b) in result.readers.labels.items()},
                            "moved": list(result.readers.moved)},
            "warnings": _plan_warnings(result),
        }, indent=2, ensure_ascii=False)
    if fmt == "markdown":
        lines = [f"### fieldsync plan for `{result.key}`", "",
                 f"Commit `{git.commit[:12]}` ({git.ref}) against the live document from `{live}`.", "",
                 f"**{_plan_summary(result)}** {size_line(result.size)}"]
        if not d.empty:
            lines += ["", "| field | attribute | before | after |", "| --- | --- | --- | --- |"]
            lines += [f"| `{n}` | *(new field)* | | |" for n in d.added]
            lines += [f"| `{c.name}` | `{k}` | {_cell(a)} | {_cell(b)} |" for c in d.changed
                      for k, (a, b) in c.changes.items()]
            lines += [f"| `{n}` | *(removed)* | | |" for n in d.removed]
        lines += ["", *(f"- {line}" for line in reader_lines(result.readers))] if not result.readers.empty else []
        edits = hand_edit_lines(result)
        lines += ["", *edits] if edits else []
        lines += [f"> **Warning:** {w}" for w in _plan_warnings(result)]
        return "\n".join(lines)
    lines = [f"Plan for {result.key} at {git.commit[:12]} ({git.ref}); live document from {live}"]
    lines += [f"  + {n}" for n in d.added]
    for c in d.changed:
        lines.append(f"  ~ {c.name}")
        lines += [f"      {k}: {value_text(a)} -> {value_text(b)}" for k, (a, b) in c.changes.items()]
    lines += [f"  - {n}" for n in d.removed]
    lines += [f"  ~ {line}" for line in reader_lines(result.readers)]
    lines += hand_edit_lines(result)
    lines += [f"Warning: {w}" for w in _plan_warnings(result)]
    return "\n".join([*lines, _plan_summary(result), size_line(result.size)])


# --- sync ---------------------------------------------------------------------------------------------------------

def sync_report(report: SyncReport) -> str:
    result, git = report.plan, report.plan.inputs.git
    statuses = result.inputs.statuses
    ok = [s for s in statuses if s.success]
    lines = [f"commit   {git.commit[:12]} ({git.ref}, {git.committed_at})",
             f"servers  {len(ok)} ok, {len(statuses) - len(ok)} failed"]
    for s in statuses:
        state = f"ok      {len(s.rules):4d} fields" if s.success else f"FAILED  {s.error}"
        lines.append(f"  {s.name:<24} {state}  ({s.duration_ms} ms)")
    d = result.diff
    lines.append(f"fields   {result.doc['total_fields']} total: {len(d.added)} added, {len(d.changed)} changed, "
                 f"{len(d.removed)} removed")
    for label, names in (("added", d.added), ("changed", [c.name for c in d.changed]), ("removed", d.removed)):
        if names:
            lines.append(f"  {label + ':':<9}{', '.join(names[:20])}{' …' if len(names) > 20 else ''}")
    lines += [f"edits    {line}" for line in hand_edit_lines(result)]
    if result.rewritten_by:
        lines.append(f"note     {result.rewritten_by}")
    if report.outcome is Outcome.REFUSED:
        lines.append(f"result   refused: {report.reason}; nothing written")
        if report.reason == result.drift and result.policy == "refuse":
            lines += ["It would overwrite this:", plan(result, "text"),
                      "Take the change into git with `fieldsync import --from-kv` and commit it, "
                      "or overwrite it with --force."]
        return "\n".join(lines)
    warnings = [*(f"conflict {conflict_text(c)}: the live value stays until resolved"
                  for c in result.conflicts if not result.overwritten), *report.warnings]
    index_after = report.index_after or "unknown"
    outcome = {Outcome.WRITTEN: f"written to {result.key} (ModifyIndex {result.index} -> {index_after})",
               Outcome.UNCHANGED: f"unchanged: {result.key} already holds this content; nothing written",
               Outcome.DRY_RUN: f"dry run: would write {result.key}; nothing written"}[report.outcome]
    return "\n".join([*lines, f"result   {outcome}", *(f"warning  {w}" for w in warnings)])


def run_record(report: SyncReport) -> str:
    """The run record as JSON, one line (what the status key holds as `last`)."""
    return json.dumps(report.run if report.run is not None else {"outcome": report.outcome}, ensure_ascii=False)


def run_failure(outcome: Outcome, error: FieldsyncError) -> str:
    return json.dumps({"outcome": outcome, "error": str(error)}, ensure_ascii=False)


# --- status -------------------------------------------------------------------------------------------------------

def position(where: Position) -> str:
    """Where the live document's commit stands against HEAD, in words."""
    commit = where.live_commit[:12] if where.live_commit else ""
    return {
        Lineage.ABSENT: "absent (run fieldsync sync)",
        Lineage.FOREIGN: "not written by fieldsync",
        Lineage.UNKNOWN: f"{commit}: unknown to this clone (fetch)",
        Lineage.SAME: f"{commit}: up to date",
        Lineage.BEHIND: f"{commit}: behind by {where.behind}",
        Lineage.AHEAD: f"{commit}: ahead of HEAD by {where.ahead} (sync at HEAD would refuse to roll back)",
        Lineage.DIVERGED: f"{commit}: diverged from HEAD (behind by {where.behind}, ahead by {where.ahead})",
    }[where.lineage]


def status_json(report: StatusReport) -> dict[str, Any]:
    """The status as `status --format json` prints it, and as the status page is built from."""
    where = report.position
    return {
        "key": report.key, "exists": report.exists, "built_from": where.live_commit, "branch": report.branch,
        "head": report.head, "position": where.lineage.value, "commits_behind": where.behind,
        "commits_ahead": where.ahead, "drift": report.drift, "drift_unknown": report.drift_unknown,
        "hand_edits_kept": [e.to_json() for e in report.kept],
        "conflicts": [e.to_json() for e in report.conflicts], "rewritten_by": report.rewritten_by,
        "job": report.job.job.value if report.job else None,
        "job_rewrites": [r.to_json() for r in report.job_rewrites], "standing": report.standing.value,
        "last_sync": report.last_run, "last_sync_unreadable": report.last_run_problem,
        **report.overview,
    }


def status(report: StatusReport, fmt: str) -> str:
    where = report.position
    if fmt == "json":
        return json.dumps(status_json(report), indent=2, ensure_ascii=False)
    if fmt == "html":
        return status_page(report)
    if not report.exists:
        lines = [f"{report.key}: absent (run fieldsync sync)"]
    else:
        drift = (f"unknown: {report.drift_unknown.splitlines()[0]}" if report.drift_unknown
                 else f"yes: {report.drift}; see `fieldsync plan`" if report.drift else "no")
        lines = [f"key        {report.key}",
                 f"built from {position(where)} ({report.branch})",
                 f"drift      {drift}"]
        if report.kept:
            lines.append(f"hand edits {len(report.kept)} kept, pending import (`fieldsync import --from-kv`): "
                         f"{_edits(report.kept)}")
        if report.conflicts:
            lines.append(f"conflicts  {len(report.conflicts)} hand edit(s) also changed in git: "
                         f"{_edits(report.conflicts)}")
        if report.job is not None and report.job_rewrites:
            lines.append(f"job        {job_rewrite_line(report.job, report.job_rewrites)}; the next sync repairs "
                         "them")
        if report.rewritten_by:
            lines.append(f"note       {report.rewritten_by}")
    if report.rebuilt:
        lines.append(f"note       {report.rebuilt}")
    lines.append(f"standing   {report.standing.value}")
    last = report.last_run
    if report.last_run_problem:
        lines.append(f"last sync  unreadable: {report.last_run_problem}")
    if last:
        ok = sum(s["success"] for s in last["servers"])
        lines.append(f"last sync  {last['outcome']} at {last['at']} ({ok}/{len(last['servers'])} servers ok)"
                     + (f": {last['error'].splitlines()[0].rstrip(':')}" if last.get("error") else ""))
        repaired = last.get("job_rewrites")
        if repaired and last["outcome"] == Outcome.WRITTEN:
            lines.append(f"           repaired {len(repaired['attributes'])} attribute(s) rewritten by the old "
                         f"backend's {repaired['job']} job (source '{repaired['source']}')")
    return "\n".join(lines)


# --- import, history, scaffold ------------------------------------------------------------------------------------

def import_result(result: ImportResult) -> str:
    verb = "changed" if result.branch else "wrote  "
    lines = [f"{verb}    {path}" for path in sorted(result.written)]
    lines += [f"ignored    {name}: {', '.join(keys)} (not field attributes)" for name, keys in
              sorted(result.ignored.items())]
    lines += [f"kept       {name} (not in the document; delete it if the field is gone)"
              for name in result.not_in_document]
    for c in result.conflicts:
        taken = {"kv": "took the hand edit", "git": "kept git's value"}.get(result.prefer or "", "left out")
        lines.append(f"conflict   {conflict_text(c)}: {taken}")
    if result.rewritten_by:
        lines.append(f"note       {result.rewritten_by}")
    if result.order_ties:
        lines.append(f"order      {len(result.order_ties)} field(s) of equal order recorded in fieldsync.yaml "
                     "(order_ties), listed as the live document lists them")
    lines.append(f"{len(result.edits)} hand edit(s) taken into {len(result.written)} file(s).")
    if result.unresolved:
        lines.append(f"{len(result.conflicts)} conflict(s) not written: choose with --prefer kv (the hand edit) or "
                     "--prefer git (git's value).")
    if result.branch and result.commit:
        lines.append(f"Committed on branch {result.branch} ({result.commit[:12]}); push it and open a pull request.")
    elif result.branch:
        lines.append(f"Nothing to commit; branch {result.branch} was not created.")
    else:
        lines.append("Review with `git diff`, then commit; `fieldsync plan` should show no changes.")
    return "\n".join(lines)


def history(changes: list[FieldCommit]) -> str:
    lines = []
    for c in changes:
        lines.append(f"{c.commit[:12]}  {c.when}  {c.author}  [{c.kind}]")
        lines.append(f"    {c.message.splitlines()[0] if c.message else ''}")
        for attribute, (before, after) in c.attributes.items():
            if before is None:
                lines.append(f"    + {attribute}: {value_text(after)}")
            elif after is None:
                lines.append(f"    - {attribute}: {value_text(before)}")
            else:
                lines.append(f"    ~ {attribute}: {value_text(before)} -> {value_text(after)}")
    return "\n".join(lines)


def scaffold_result(result: ScaffoldResult) -> str:
    lines = [f"warning: {s.name} failed: {s.error}" for s in result.statuses if not s.success]
    if not result.files:
        lines.append("every field Prometheus has is described by a file; nothing to scaffold")
    elif result.branch and result.commit:
        lines.append(f"committed {len(result.files)} stub(s) on branch {result.branch} ({result.commit[:12]}); "
                     "push it and open a pull request")
    else:
        lines += [f"wrote {path}" for path in result.files]
    return "\n".join(lines)


def initialized(directory: str, result: InitResult) -> str:
    lines = [f"servers are named after their URLs: {result.note}"] if result.note else []
    for match in result.matches:
        lines.append(f"server {match.server}: hostname {match.hostname} (matched by {match.how.value})" if match.how
                     else f"server {match.server}: no entry of {result.key}'s server_status matched it: its hostname "
                          "is its URL's (edit it in fieldsync.yaml if the old system knew it otherwise)")
    lines += [f"warning: {result.key} names {host}, which no server matched: the old UI would lose that site's "
              "labels and \"discovered in\" (add the server, or name one after it)" for host in result.unmatched]
    return "\n".join([
        *lines,
        f"initialized {directory} (branch main, commit {result.commit[:12]})",
        f"the workflows install fieldsync @ {result.source} (.github/fieldsync-requirements.txt)",
        "next, with CONSUL_HTTP_ADDR (and a token that can read the key) set:",
        f"  cd {directory}",
        "  fieldsync import --from-kv      # the live document's customizations into fields/",
        "  fieldsync plan --worktree       # expect \"No changes\"",
        "  git add -A && git commit -m 'Import fields from Consul KV'",
        "  fieldsync sync",
    ])


# --- serve --------------------------------------------------------------------------------------------------------

LOG_FORMATS = ("text", "json")


def _logfmt_value(value: Any) -> str:
    text = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
    return text if text and not any(c in text for c in ' "=\\\n') else json.dumps(text, ensure_ascii=False)


def log_line(event: dict[str, Any], fmt: str, at: str) -> str:
    """One log line of `fieldsync serve`: `at event key=value …` (logfmt), or a JSON object with `time`; what is
    None is left out."""
    fields = {k: v for k, v in event.items() if v is not None}
    if fmt == "json":
        return json.dumps({"time": at, **fields}, ensure_ascii=False, default=str)
    name = fields.pop("event", "log")
    return " ".join([at, str(name), *(f"{k}={_logfmt_value(v)}" for k, v in fields.items())])


# --- the status page ----------------------------------------------------------------------------------------------

PAGE_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
main{max-width:1200px;margin:0 auto;padding:16px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:0 0 8px}.key{font-family:monospace;font-weight:400}
section,header{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:12px 16px;margin:0 0 12px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0 0}dt{color:#5b6472}dd{margin:0}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eef0f3;
vertical-align:top}th{color:#5b6472;font-weight:600}code{font-size:12px;word-break:break-all}
.count{background:#e8ebef;border-radius:9px;padding:0 7px;font-size:12px;font-weight:400}
.standing{font-weight:600;margin:0}.standing-conflicts{color:#b3261e}.standing-hand-edits-pending{color:#8a5a00}
section.alarm{border:2px solid #b3261e;background:#fff5f4}section.alarm h2{color:#b3261e}
.server.failed td{color:#b3261e}.src{border-radius:3px;padding:0 4px;font-size:12px}.src-git{background:#e3f1e6}
.src-extracted{background:#e6eefb}.src-live{background:#fbe9d6}.edited{background:#fff1b8}
.flags span{font-size:11px;color:#5b6472}.bar .track{fill:#e8ebef}.bar .fill{fill:#3f7d4e}.bar .warn{fill:#b3261e}
.chart rect{fill:#3f7d4e}.chart .run-failed,.chart .run-refused{fill:#b3261e}.chart .run-unchanged{fill:#9aa5b1}
tr.hidden{display:none}footer{color:#5b6472;font-size:12px}
"""

# Filters the fields table as one types; on a live page, asks for the status every second and, when it has
# changed, puts the new page in place of the old one (no reload: the filter and the scroll position stay).
PAGE_SCRIPT = """
(function () {
  function filter() {
    var box = document.getElementById("filter"); if (!box) return;
    var words = box.value.toLowerCase().split(/\\s+/).filter(Boolean);
    document.querySelectorAll("#fields-table tbody tr").forEach(function (row) {
      var text = row.textContent.toLowerCase();
      row.classList.toggle("hidden", !words.every(function (w) { return text.indexOf(w) >= 0; }));
    });
  }
  document.addEventListener("input", function (e) { if (e.target.id === "filter") filter(); });
  var page = document.getElementById("page"), source = page.getAttribute("data-live");
  if (!source) return;
  setInterval(function () {
    fetch(source, {cache: "no-store"}).then(function (r) { return r.json(); }).then(function (status) {
      if (status.version === page.getAttribute("data-version")) return;
      var here = location.pathname;
      return fetch(here, {cache: "no-store"}).then(function (r) { return r.text(); }).then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("page");
        var typed = document.getElementById("filter").value;
        page.innerHTML = fresh.innerHTML;
        page.setAttribute("data-version", fresh.getAttribute("data-version"));
        document.getElementById("filter").value = typed; filter();
      });
    }).catch(function () {});
  }, 1000);
})();
"""

STANDING_TEXT = {Standing.IN_ORDER: "In order: the live document is what git at HEAD makes.",
                 Standing.BEHIND: "Behind: the live document is not what git at HEAD makes yet.",
                 Standing.HAND_EDITS: "Hand edits pending: kept in Consul, not in git yet.",
                 Standing.CONFLICTS: "Conflicts: hand edits that git changed too need a decision."}


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def page_policy(live_source: str | None) -> str:
    """The Content-Security-Policy of the status page: its own style and script, and nothing from anywhere else
    (a live page may fetch its own status, from its own origin)."""
    connect = "'self'" if live_source else "'none'"
    return (f"default-src 'none'; style-src {_csp_hash(PAGE_STYLE)}; script-src {_csp_hash(PAGE_SCRIPT)}; "
            f"img-src 'none'; connect-src {connect}; base-uri 'none'; form-action 'none'")


def _chart(runs: list[dict[str, Any]], width: int = 600, height: int = 60) -> dict[str, Any]:
    """Bars of the recent runs' durations, oldest on the left, coloured by outcome."""
    shown = [r for r in reversed(runs)]
    longest = max([r.get("duration_ms") or 0 for r in shown] + [1])
    step = width / max(len(shown), 1)
    bars = []
    for n, run in enumerate(shown):
        h = max(2.0, height * (run.get("duration_ms") or 0) / longest)
        bars.append({"x": round(n * step + 1, 1), "y": round(height - h, 1), "w": round(max(step - 2, 1), 1),
                     "h": round(h, 1), "outcome": run.get("outcome"),
                     "label": f"{run.get('at')}: {run.get('outcome')}, {run.get('duration_ms')} ms"})
    return {"width": width, "height": height, "bars": bars}


def status_page(report: StatusReport, live_source: str | None = None, role: str | None = None,
                next_run: str | None = None, hand_edits_branch: str | None = None) -> str:
    """The status page: one self-contained HTML document built from `status_json`, readable with JavaScript off,
    every value escaped by the template engine; `live_source`, the URL of its JSON, makes it refresh itself."""
    import jinja2  # not at the top: only the page needs it

    from . import __version__

    data = status_json(report)
    env = jinja2.Environment(loader=jinja2.PackageLoader("fieldsync", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["value"] = value_text  # a value as JSON text; the engine escapes it like any other
    return env.get_template("status.html.j2").render(
        s=data, csp=page_policy(live_source), style=PAGE_STYLE, script=PAGE_SCRIPT, version=overview.version(data),
        standing_text=STANDING_TEXT[report.standing], position_text=position(report.position), role=role,
        next_run=next_run, hand_edits_branch=hand_edits_branch, shown=list(overview.SHOWN), chart=_chart(data["runs"]),
        fieldsync_version=__version__, live_source=live_source)
