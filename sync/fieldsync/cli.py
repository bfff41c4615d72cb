"""The `fieldsync` command line."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from . import __version__
from .errors import FieldsyncError
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
