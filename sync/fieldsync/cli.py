"""The `fieldsync` command line."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from . import __version__
from .config import Config, ServerSpec, load_config, server_from_arg
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
    problems, results = run(entries, cache)
    click.echo(render(problems, fmt, len(entries)), err=bool(problems) and fmt == "text")
    sys.exit(1 if problems else 0)


def _servers(prometheus: tuple[str, ...], config: Config) -> list[ServerSpec]:
    return [server_from_arg(p) for p in prometheus] if prometheus else list(config.servers)


_prometheus_option = click.option(
    "--prometheus", "prometheus", multiple=True, metavar="URL|FILE",
    help="Prometheus base URL, or a prometheus.yml / directory of *.yml (repeatable; replaces the config's list).")
_config_option = click.option("--config", "config_path", type=click.Path(dir_okay=False),
                              help="Config file [default: <repo>/fieldsync.yaml when present].")


@main.command()
@_prometheus_option
@_config_option
@click.option("--repo", default=".", show_default=True, help="Where to look for fieldsync.yaml.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def extract(prometheus: tuple[str, ...], config_path: str | None, repo: str, fmt: str) -> None:
    """Show the fields each Prometheus server yields. Exit 1 when any server failed."""
    from .extract import extract_all
    from .prometheus import fetch

    servers = _servers(prometheus, load_config(config_path, repo))
    if not servers:
        raise UsageError("no Prometheus server given: use --prometheus URL|FILE or the config file")
    statuses = extract_all(servers, fetch)
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
@click.option("--repo", default=".", show_default=True, help="The git repository holding fields/.")
@click.option("--rev", default="HEAD", show_default=True, help="Commit, branch or tag whose fields are synced.")
@_prometheus_option
@click.option("--key", envvar="FIELDSYNC_KEY", help="Consul KV key [default: from config, else "
              "skills/eye/metadata/fields].")
@click.option("--dry-run", is_flag=True, help="Build and compare, write nothing.")
@_config_option
@click.option("--consul-addr", help="Overrides CONSUL_HTTP_ADDR.")
@click.option("--consul-token-file", type=click.Path(dir_okay=False), help="Overrides CONSUL_HTTP_TOKEN(_FILE).")
@click.option("--lock-timeout", type=float, help="Seconds to wait for a concurrent sync [default: 60].")
def sync(repo: str, rev: str, prometheus: tuple[str, ...], key: str | None, dry_run: bool, config_path: str | None,
         consul_addr: str | None, consul_token_file: str | None, lock_timeout: float | None) -> None:
    """Write the fields of a commit, merged over what Prometheus yields, to Consul KV.

    Exit 0 written or nothing to change, 1 error (nothing written), 3 refused to protect data.
    """
    from .consulkv import ConsulKV, ConsulSettings
    from .prometheus import fetch
    from .syncer import sync as run

    config = load_config(config_path, repo)
    kv = ConsulKV(ConsulSettings.resolve(os.environ, consul_addr, consul_token_file))
    report = run(repo, rev, key or config.key, _servers(prometheus, config), kv, fetch, dry_run,
                 config.lock_timeout if lock_timeout is None else lock_timeout)
    click.echo(report.render())
