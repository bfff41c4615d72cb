"""The `fieldsync` command line."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from . import __version__
from .config import NO_SERVERS, Config, ServerSpec, load_config, server_from_arg
from .errors import FieldsyncError, UsageError
from .problems import FORMATS, render


class _Group(click.Group):
    """Reports FieldsyncError as one line with its exit code, never as a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FieldsyncError as e:
            click.echo(f"fieldsync: error: {e}", err=True)
            ctx.exit(e.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fieldsync")
def main() -> None:
    """Metadata field customizations in git, synced to Consul KV."""


@main.command()
@click.argument("paths", nargs=-1)
@click.option("--rev", help="Validate the files of this git revision (read from the commit, not the disk).")
@click.option("--repo", default=".", show_default=True, help="Repository (or working tree) root.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--cache-dir", type=click.Path(path_type=Path), envvar="FIELDSYNC_CACHE_DIR",
              help="Where results are cached by git blob id [default: $XDG_CACHE_HOME/fieldsync].")
@click.option("--no-cache", is_flag=True, help="Check every file afresh.")
def validate(paths: tuple[str, ...], rev: str | None, repo: str, fmt: str, cache_dir: Path | None,
             no_cache: bool) -> None:
    """Check field files: YAML, schema, and the rules across files.

    PATHS are field files or directories (default: the repo's fields/). Exit 0 valid, 1 invalid, 2 usage error.
    """
    from . import sources
    from .cache import ResultCache, default_dir
    from .validate import validate as run

    cache = None if no_cache else ResultCache(cache_dir or default_dir())
    if rev is None:
        targets = [os.path.normpath(p) for p in paths or [os.path.join(repo, sources.FIELDS_DIR)]]
        entries = sources.worktree_entries(targets, cache.known_id) if cache else sources.worktree_entries(targets)
    else:
        git = sources.open_repo(repo)
        entries = sources.git_entries(git, sources.resolve_commit(git, rev), list(paths) or [sources.FIELDS_DIR])
    problems, _ = run(entries, cache)
    click.echo(render(problems, fmt, len(entries)), err=bool(problems) and fmt == "text")
    sys.exit(1 if problems else 0)


def _servers(prometheus: tuple[str, ...], config: Config) -> list[ServerSpec]:
    return [server_from_arg(p) for p in prometheus] if prometheus else list(config.servers)


def _required_servers(prometheus: tuple[str, ...], config_path: str | None, repo: str) -> list[ServerSpec]:
    servers = _servers(prometheus, load_config(config_path, repo))
    if not servers:
        raise UsageError(NO_SERVERS)
    return servers


_prometheus_option = click.option(
    "--prometheus", "prometheus", multiple=True, metavar="URL|FILE",
    help="Prometheus base URL, or a prometheus.yml / directory of *.yml (repeatable; replaces the config's list).")
_config_option = click.option("--config", "config_path", type=click.Path(dir_okay=False),
                              help="Config file [default: <repo>/fieldsync.yaml when present].")
_repo_option = click.option("--repo", default=".", show_default=True, help="The git repository holding fields/.")


def _consul_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options of commands that talk to Consul KV."""
    for option in reversed([
        _repo_option, _prometheus_option, _config_option,
        click.option("--key", envvar="FIELDSYNC_KEY",
                     help="Consul KV key [default: from config, else skills/eye/metadata/fields]."),
        click.option("--consul-addr", help="Overrides CONSUL_HTTP_ADDR."),
        click.option("--consul-token-file", type=click.Path(dir_okay=False),
                     help="Overrides CONSUL_HTTP_TOKEN(_FILE)."),
    ]):
        command = option(command)
    return command


@dataclass
class _Target:
    repo: str
    config: Config
    servers: list[ServerSpec]
    key: str
    kv: Any


def _target(repo: str, prometheus: tuple[str, ...], config_path: str | None, key: str | None,
            consul_addr: str | None, consul_token_file: str | None) -> _Target:
    from .consulkv import ConsulKV, ConsulSettings

    config = load_config(config_path, repo)
    kv = ConsulKV(ConsulSettings.resolve(os.environ, consul_addr, consul_token_file))
    return _Target(repo, config, _servers(prometheus, config), key or config.key, kv)


@main.command()
@_prometheus_option
@_config_option
@click.option("--repo", default=".", show_default=True, help="Where to look for fieldsync.yaml.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def extract(prometheus: tuple[str, ...], config_path: str | None, repo: str, fmt: str) -> None:
    """Show the fields each Prometheus server yields. Exit 1 when any server failed."""
    from .extract import extract_all
    from .prometheus import fetch

    statuses = extract_all(_required_servers(prometheus, config_path, repo), fetch)
    if fmt == "json":
        click.echo(json.dumps([s.to_json() for s in statuses], indent=2))
    else:
        for s in statuses:
            labels = ", ".join(f"{k}={v}" for k, v in s.external_labels.items()) or "none"
            head = f"ok, {len(s.rules)} fields, external labels: {labels}" if s.success else f"FAILED: {s.error}"
            click.echo(f"{s.name} ({s.url}): {head} ({s.duration_ms} ms)")
            for r in s.rules:
                click.echo(f"  {r.name:<24} {r.source_label:<48} {r.regex} -> {r.replacement}")
    sys.exit(0 if all(s.success for s in statuses) else 1)


@main.command()
@_consul_options
@click.option("--rev", default="HEAD", show_default=True, help="Commit, branch or tag whose fields are synced.")
@click.option("--dry-run", is_flag=True, help="Build and compare, write nothing.")
@click.option("--allow-rollback", is_flag=True, help="Write REV even if the live document is from a newer commit.")
@click.option("--force", is_flag=True, help="Overwrite a live document that was edited outside fieldsync.")
@click.option("--lock-timeout", type=float, help="Seconds to wait for a concurrent sync [default: 60].")
def sync(repo: str, rev: str, prometheus: tuple[str, ...], key: str | None, dry_run: bool, config_path: str | None,
         consul_addr: str | None, consul_token_file: str | None, lock_timeout: float | None, allow_rollback: bool,
         force: bool) -> None:
    """Write the fields of a commit, merged over what Prometheus yields, to Consul KV.

    Exit 0 written or nothing to change, 1 error (nothing written), 3 refused to protect data.
    """
    from .prometheus import fetch
    from .syncer import sync as run

    t = _target(repo, prometheus, config_path, key, consul_addr, consul_token_file)
    report = run(repo, rev, t.key, t.servers, t.kv, fetch, dry_run,
                 t.config.lock_timeout if lock_timeout is None else lock_timeout, allow_rollback, force)
    click.echo(report.render())


class _PlanCommand(click.Command):
    """plan's exit 2 means "changes"; its argument errors exit 1 like its other errors."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as e:
            e.exit_code = 1
            raise


@main.command(cls=_PlanCommand)
@_consul_options
@click.option("--rev", default="HEAD", show_default=True, help="Commit, branch or tag to plan.")
@click.option("--worktree", is_flag=True, help="Plan the field files on disk (uncommitted edits included).")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
@click.pass_context
def plan(ctx: click.Context, repo: str, rev: str, prometheus: tuple[str, ...], key: str | None,
         config_path: str | None, consul_addr: str | None, consul_token_file: str | None, worktree: bool,
         fmt: str) -> None:
    """Show what sync would change in the live document, attribute by attribute.

    Exit 0 no changes, 2 changes, 1 error.
    """
    from .planview import render_plan
    from .prometheus import fetch
    from .syncer import gather, prepare, require_answers, utc_now

    try:
        t = _target(repo, prometheus, config_path, key, consul_addr, consul_token_file)
        inputs = gather(repo, rev, t.servers, fetch, worktree)
        require_answers(inputs)
        result = prepare(inputs, t.kv, t.key, utc_now())
    except FieldsyncError as e:
        click.echo(f"fieldsync: error: {e}", err=True)
        ctx.exit(1)
    click.echo(render_plan(result, fmt))
    ctx.exit(0 if result.diff.empty else 2)


@main.command("import")
@_consul_options
@click.option("--from-kv", "from_kv", is_flag=True, help="Read the live document from Consul KV (the default).")
@click.option("--from-file", "from_file", type=click.Path(dir_okay=False, exists=True),
              help="Read the document from a JSON file (bare, or the old {data, meta} envelope).")
def import_(repo: str, prometheus: tuple[str, ...], key: str | None, config_path: str | None,
            consul_addr: str | None, consul_token_file: str | None, from_kv: bool, from_file: str | None) -> None:
    """Write fields/<name>.yaml for every field of a live document, holding what people chose.

    Existing files keep their comments and key order. Nothing is written unless every file would be valid.
    """
    from . import document
    from .importer import apply_import, plan_import

    if from_kv and from_file:
        raise UsageError("--from-kv and --from-file exclude each other")
    if from_file:
        with open(from_file, "rb") as f:
            doc = document.decode(f.read(), from_file)
    else:
        t = _target(repo, prometheus, config_path, key, consul_addr, consul_token_file)
        doc = document.decode(t.kv.read(t.key)[0], t.key)
        if doc is None:
            raise FieldsyncError(f"{t.key} does not exist in Consul; nothing to import")
    assert doc is not None
    result = plan_import(doc, os.path.join(repo, "fields"))
    apply_import(result)
    for path in sorted(result.written):
        click.echo(f"wrote      {path}")
    for name, keys in sorted(result.ignored.items()):
        click.echo(f"ignored    {name}: {', '.join(keys)} (not field attributes)")
    for name in result.not_in_document:
        click.echo(f"kept       {name} (not in the document; delete it if the field is gone)")
    click.echo(f"{len(result.written)} file(s) written, {len(result.unchanged)} unchanged. "
               "Review with `git diff`, then commit; `fieldsync plan` should show no changes.")


@main.command()
@click.argument("field")
@_repo_option
@click.option("--rev", default="HEAD", show_default=True, help="Where the history starts.")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
def history(field: str, repo: str, rev: str, limit: int) -> None:
    """List the commits that changed fields/FIELD.yaml, newest first, with each attribute change."""
    from . import sources
    from .history import field_history
    from .planview import value_text

    git = sources.open_repo(repo)
    changes = field_history(git, sources.resolve_commit(git, rev), field, limit)
    if not changes:
        raise UsageError(f"no commit reachable from {rev} touches fields/{field}.yaml")
    for c in changes:
        click.echo(f"{c.commit[:12]}  {c.when}  {c.author}  [{c.kind}]")
        click.echo(f"    {c.message.splitlines()[0] if c.message else ''}")
        for attribute, (before, after) in c.attributes.items():
            if before is None:
                click.echo(f"    + {attribute}: {value_text(after)}")
            elif after is None:
                click.echo(f"    - {attribute}: {value_text(before)}")
            else:
                click.echo(f"    ~ {attribute}: {value_text(before)} -> {value_text(after)}")


@main.command()
@_consul_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def status(repo: str, prometheus: tuple[str, ...], key: str | None, config_path: str | None, consul_addr: str | None,
           consul_token_file: str | None, fmt: str) -> None:
    """Which commit the live document came from, how far behind the branch it is, drift, and the last sync."""
    from . import document, runstatus, sources

    t = _target(repo, prometheus, config_path, key, consul_addr, consul_token_file)
    live = document.decode(t.kv.read(t.key)[0], t.key)
    last = (runstatus.read(t.kv, t.key) or {}).get("last")
    git = sources.open_repo(repo)
    head = sources.resolve_commit(git, "HEAD")
    built = document.built_from(live)
    behind: int | None = None
    if built:
        with contextlib.suppress(KeyError, ValueError):
            import pygit2

            behind = git.ahead_behind(head.id, pygit2.Oid(hex=built))[0]
    info = {"key": t.key, "exists": live is not None, "built_from": built, "branch": git.head.name,
            "head": str(head.id), "commits_behind": behind, "drift": bool(live) and not document.is_sealed(live),
            "last_sync": last}
    if fmt == "json":
        click.echo(json.dumps(info, indent=2))
        return
    if live is None:
        click.echo(f"{t.key}: absent (run fieldsync sync)")
    else:
        where = "unknown to this repository" if behind is None and built else \
            "up to date" if behind == 0 else f"{behind} commit(s) behind {git.head.name}"
        click.echo(f"key        {t.key}")
        click.echo(f"built from {built[:12] if built else 'no commit (not written by fieldsync)'}: {where}")
        click.echo("drift      " + ("yes: edited outside fieldsync; see `fieldsync plan`" if info["drift"] else "no"))
    if last:
        ok = sum(s["success"] for s in last["servers"])
        click.echo(f"last sync  {last['outcome']} at {last['at']} ({ok}/{len(last['servers'])} servers ok)"
                   + (f": {last['error'].splitlines()[0].rstrip(':')}" if last.get("error") else ""))


@main.command()
@_repo_option
@_prometheus_option
@_config_option
@click.option("--branch", help="Commit the stubs on this new branch (from HEAD) instead of writing files.")
def scaffold(repo: str, prometheus: tuple[str, ...], config_path: str | None, branch: str | None) -> None:
    """Write a YAML stub for every field Prometheus has that no file describes."""
    from . import sources
    from .extract import extract_all
    from .fieldcheck import SUFFIX
    from .fieldwriter import write_atomically
    from .merge import discover
    from .prometheus import fetch
    from .scaffold import commit_on_branch, stubs

    statuses = extract_all(_required_servers(prometheus, config_path, repo), fetch)
    for s in statuses:
        if not s.success:
            click.echo(f"warning: {s.name} failed: {s.error}", err=True)
    if branch:
        git = sources.open_repo(repo)
        entries = sources.git_entries(git, sources.resolve_commit(git, "HEAD"), [sources.FIELDS_DIR])
        existing = [os.path.basename(e.path)[: -len(SUFFIX)] for e in entries if e.path.endswith(SUFFIX)]
    else:
        directory = os.path.join(repo, sources.FIELDS_DIR)
        existing = [f[: -len(SUFFIX)] for f in os.listdir(directory)
                    if f.endswith(SUFFIX)] if os.path.isdir(directory) else []
    files = stubs(discover(statuses), existing)
    if not files:
        click.echo("every field Prometheus has is described by a file; nothing to scaffold")
        return
    if branch:
        try:
            sha = commit_on_branch(git, branch, files, f"Scaffold {len(files)} field(s) found in Prometheus")
        except ValueError as e:
            raise UsageError(str(e)) from None
        click.echo(f"committed {len(files)} stub(s) on branch {branch} ({sha[:12]}); push it and open a pull request")
    else:
        for path, text in files.items():
            write_atomically(os.path.join(repo, path), text)
            click.echo(f"wrote {os.path.join(repo, path)}")
