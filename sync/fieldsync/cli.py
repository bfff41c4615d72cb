"""The `fieldsync` command line: parse options, call one use case, render its result, map it to an exit code.

Exit codes: 0 done (or nothing to change), 1 error (nothing written), 2 usage error (plan: changes), 3 refused to
protect data, 130 interrupted. One handler (`_Fieldsync.main`) turns every error into one line.
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from . import __version__, render
from .errors import FieldsyncError, Terminated, UsageError
from .model import DRIFT_POLICIES, Outcome, Standing
from .rules import guards

TRACEBACK_ENV = "FIELDSYNC_TRACEBACK"


class _Fieldsync(click.Group):
    """The one error handler: FieldsyncError is one line and its exit code; Ctrl-C exits 130; anything else is an
    "unexpected error" line, with the traceback only when asked for (--traceback or FIELDSYNC_TRACEBACK=1)."""

    show_traceback = False

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        self.show_traceback = os.environ.get(TRACEBACK_ENV, "") not in ("", "0")
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _terminate)
        code: int
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra) or 0
        except click.ClickException as e:
            e.show()
            code = e.exit_code
        except click.exceptions.Abort:
            click.echo("fieldsync: interrupted", err=True)
            code = 130
        except Terminated as e:
            click.echo("fieldsync: terminated", err=True)
            code = e.exit_code
        except FieldsyncError as e:
            click.echo(f"fieldsync: error: {e}", err=True)
            code = e.exit_code
        except Exception as e:
            if self.show_traceback:
                raise
            click.echo(f"fieldsync: unexpected error: {type(e).__name__}: {e} (fieldsync {__version__}); rerun with "
                       f"--traceback or {TRACEBACK_ENV}=1 to see where, and report it", err=True)
            code = 1
        if standalone_mode:
            sys.exit(code)
        return code


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated()


@click.group(cls=_Fieldsync, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fieldsync")
@click.option("--traceback", is_flag=True, help=f"Show the traceback of an unexpected error (also {TRACEBACK_ENV}=1).")
@click.pass_context
def main(ctx: click.Context, traceback: bool) -> None:
    """Metadata field customizations in git, synced to Consul KV."""
    if traceback:
        ctx.command.show_traceback = True  # type: ignore[attr-defined]


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


_drift_option = click.option(
    "--drift", type=click.Choice(DRIFT_POLICIES),
    help="What to do with hand edits of the live document [default: from config, else keep]: keep them unless git "
         "changed them too; refuse to overwrite any; revert them to git's values (recorded in <key>.status).")


def _consul(consul_addr: str | None, consul_token_file: str | None, addresses: tuple[str, ...] = ()) -> Any:
    from .adapters.consul import ConsulKV, ConsulSettings

    return ConsulKV(ConsulSettings.resolve_all(os.environ, consul_addr, consul_token_file, addresses))


@main.command()
@click.argument("paths", nargs=-1)
@click.option("--rev", help="Validate the files of this git revision (read from the commit, not the disk).")
@click.option("--repo", default=".", show_default=True, help="Repository (or working tree) root.")
@click.option("--format", "fmt", type=click.Choice(render.PROBLEM_FORMATS), default="text", show_default=True)
@click.option("--cache-dir", type=click.Path(path_type=Path), envvar="FIELDSYNC_CACHE_DIR",
              help="Where results are cached by git blob id [default: $XDG_CACHE_HOME/fieldsync].")
@click.option("--no-cache", is_flag=True, help="Check every file afresh.")
def validate(paths: tuple[str, ...], rev: str | None, repo: str, fmt: str, cache_dir: Path | None,
             no_cache: bool) -> int:
    """Check field files: YAML, schema, and the rules across files.

    PATHS are field files or directories (default: the repo's fields/). Exit 0 valid, 1 invalid, 2 usage error.
    """
    from .usecases.validate import validate as run

    result = run(repo=repo, paths=paths, rev=rev, cache_dir=cache_dir, use_cache=not no_cache)
    click.echo(render.validation(result, fmt), err=not result.valid and fmt == "text")
    return 0 if result.valid else 1


@main.command()
@click.argument("directory", type=click.Path(file_okay=False))
@_prometheus_option
@click.option("--key", help="Consul KV key [default: skills/eye/metadata/fields].")
@click.option("--consul-addr", help="Overrides CONSUL_HTTP_ADDR.")
@click.option("--consul-token-file", type=click.Path(dir_okay=False), help="Overrides CONSUL_HTTP_TOKEN(_FILE).")
@click.option("--fieldsync-source", metavar="SOURCE",
              help="Where the workflows install fieldsync from: git+https://HOST/PATH@COMMIT (a full commit id) or "
                   "https://HOST/PATH/fieldsync-VERSION-py3-none-any.whl#sha256=HEX [default: where this fieldsync "
                   "was installed from, when that is one of these].")
def init(directory: str, prometheus: tuple[str, ...], key: str | None, consul_addr: str | None,
         consul_token_file: str | None, fieldsync_source: str | None) -> int:
    """Start a new repository to adopt fieldsync in: DIRECTORY becomes a git repository (branch main) whose first
    commit holds fieldsync.yaml, schema/, an empty fields/, the workflows and a pre-commit config.

    With Consul given (CONSUL_HTTP_ADDR or --consul-addr), each server is named with the hostname the live
    document's server_status[] knows it by, as the old system's readers look sites up. The workflows install
    fieldsync pinned to a commit or to a wheel's hash, never by a name a package index resolves.
    """
    from .usecases.init import fieldsync_source as pinned
    from .usecases.init import init as run

    source = pinned(fieldsync_source)  # before Consul is asked anything
    kv = _consul(consul_addr, consul_token_file) if consul_addr or os.environ.get("CONSUL_HTTP_ADDR") else None
    click.echo(render.initialized(directory, run(directory=directory, prometheus=prometheus, key=key, kv=kv,
                                                 source=source)))
    return 0


@main.command()
@_prometheus_option
@_config_option
@click.option("--repo", default=".", show_default=True, help="Where to look for fieldsync.yaml.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def extract(prometheus: tuple[str, ...], config_path: str | None, repo: str, fmt: str) -> int:
    """Show the fields each Prometheus server yields. Exit 1 when any server failed."""
    from .usecases import settings
    from .usecases.extract import extract as run

    statuses = run(servers=settings.resolve(repo=repo, config_path=config_path, prometheus=prometheus).servers)
    click.echo(render.extraction(statuses, fmt))
    return 0 if all(s.success for s in statuses) else 1


@main.command()
@_consul_options
@click.option("--rev", default="HEAD", show_default=True, help="Commit, branch or tag whose fields are synced.")
@click.option("--dry-run", is_flag=True, help="Build and compare, write nothing.")
@click.option("--allow-rollback", is_flag=True, help="Write REV even if the live document is from a newer commit.")
@click.option("--force", is_flag=True, help="Write over hand edits the drift policy refuses to overwrite (git wins).")
@click.option("--lock-timeout", type=float, help="Seconds to wait for a concurrent sync [default: 60].")
@click.option("--allow-delete", is_flag=True, help="Remove more fields than the deletion budget allows.")
@_drift_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: the run record, as the status key holds it (on an error: its outcome and the error).")
@click.option("--metrics-file", type=click.Path(dir_okay=False),
              help="Count this run in PATH, a node_exporter textfile (written atomically).")
def sync(repo: str, rev: str, prometheus: tuple[str, ...], key: str | None, dry_run: bool, config_path: str | None,
         consul_addr: str | None, consul_token_file: str | None, lock_timeout: float | None, allow_rollback: bool,
         force: bool, allow_delete: bool, drift: str | None, fmt: str, metrics_file: str | None) -> int:
    """Write the fields of a commit, merged over what Prometheus yields, to Consul KV.

    Exit 0 written or nothing to change, 1 error (nothing written), 3 refused to protect data.
    """
    from .usecases import settings
    from .usecases.metricsfile import record_run
    from .usecases.sync import SyncOptions, outcome_of
    from .usecases.sync import sync as run

    s = settings.resolve(repo=repo, config_path=config_path, prometheus=prometheus, key=key,
                         lock_timeout=lock_timeout, drift=drift)
    kv = _consul(consul_addr, consul_token_file, s.consul_addresses)
    options = SyncOptions(repo=s.repo, key=s.key, servers=s.servers, rev=rev, dry_run=dry_run,
                          lock_timeout=s.lock_timeout, allow_rollback=allow_rollback, force=force, drift=s.drift,
                          state_prefix=s.state_prefix, budget=s.budget, allow_delete=allow_delete,
                          order_ties=s.order_ties)
    started = time.monotonic()
    try:
        report = run(options, kv, notify=lambda line: click.echo(line, err=True))
    except FieldsyncError as e:
        if fmt == "json":
            click.echo(render.run_failure(outcome_of(e), e))
        if metrics_file:
            record_run(metrics_file, outcome_of(e), time.monotonic() - started)
        raise
    if metrics_file and report.outcome is not Outcome.DRY_RUN:
        record_run(metrics_file, report.outcome, time.monotonic() - started, report)
    click.echo(render.run_record(report) if fmt == "json" else render.sync_report(report))
    return 3 if report.outcome is Outcome.REFUSED else 0


class _PlanUsageError(click.UsageError):
    exit_code = 1


class _PlanCommand(click.Command):
    """plan's exit 2 means "changes", so every error of plan, its argument errors included, exits 1."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as e:
            raise _PlanUsageError(e.message, e.ctx) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FieldsyncError as e:
            e.exit_code = 1
            raise


@main.command(cls=_PlanCommand)
@_consul_options
@click.option("--rev", default="HEAD", show_default=True, help="Commit, branch or tag to plan.")
@click.option("--worktree", is_flag=True, help="Plan the field files on disk (uncommitted edits included).")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
@_drift_option
def plan(repo: str, rev: str, prometheus: tuple[str, ...], key: str | None, config_path: str | None,
         consul_addr: str | None, consul_token_file: str | None, worktree: bool, fmt: str, drift: str | None) -> int:
    """Show what sync would change in the live document, attribute by attribute.

    Exit 0 no changes, 2 changes, 1 error.
    """
    from .usecases import settings
    from .usecases.plan import plan as run

    s = settings.resolve(repo=repo, config_path=config_path, prometheus=prometheus, key=key, drift=drift)
    kv = _consul(consul_addr, consul_token_file, s.consul_addresses)
    result = run(repo=s.repo, key=s.key, servers=s.servers, kv=kv, rev=rev,
                 worktree=worktree, policy=s.drift, budget=s.budget, state_prefix=s.state_prefix,
                 order_ties=s.order_ties)
    click.echo(render.plan(result, fmt))
    too_big = guards.size(result.size.length)
    if too_big:
        raise FieldsyncError(f"{too_big}: every sync of this would fail")
    return 2 if result.changes else 0


@main.command("import")
@_consul_options
@click.option("--from-kv", "from_kv", is_flag=True, help="Read the live document from Consul KV (the default).")
@click.option("--from-file", "from_file", type=click.Path(dir_okay=False, exists=True),
              help="Read the document from a JSON file (bare, or the old {data, meta} envelope).")
@click.option("--prefer", type=click.Choice(["kv", "git"]),
              help="For an attribute changed both by hand and in git: take the hand edit (kv) or keep git's value.")
@click.option("--branch", help="Commit the result on this new branch (from HEAD) instead of writing files.")
def import_(repo: str, prometheus: tuple[str, ...], key: str | None, config_path: str | None,
            consul_addr: str | None, consul_token_file: str | None, from_kv: bool, from_file: str | None,
            prefer: str | None, branch: str | None) -> int:
    """Take the hand edits of the live document into fields/<name>.yaml, three-way.

    Only what was changed by hand since the commit the document names is written, over the files git holds now, so
    later commits are never reverted. Existing files keep their comments and key order. Nothing is written unless
    every file would be valid. Exit 0 done, 3 conflicts left out (see --prefer), 1 error.
    """
    from .usecases import settings
    from .usecases.imports import import_document

    if from_kv and from_file:
        raise UsageError("--from-kv and --from-file exclude each other")
    if from_file:
        result = import_document(repo=settings.root_of(repo), from_file=from_file, prefer=prefer, branch=branch)
    else:
        s = settings.resolve(repo=repo, config_path=config_path, prometheus=prometheus, key=key)
        kv = _consul(consul_addr, consul_token_file, s.consul_addresses)
        result = import_document(repo=s.repo, key=s.key, kv=kv, prefer=prefer, branch=branch,
                                 state_prefix=s.state_prefix)
    click.echo(render.import_result(result))
    return 3 if result.unresolved else 0


@main.command()
@click.argument("field")
@_repo_option
@click.option("--rev", default="HEAD", show_default=True, help="Where the history starts.")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
def history(field: str, repo: str, rev: str, limit: int) -> int:
    """List the commits that changed fields/FIELD.yaml, newest first, with each attribute change."""
    from .usecases.history import history as run

    click.echo(render.history(run(repo=repo, field=field, rev=rev, limit=limit)))
    return 0


@main.command()
@_consul_options
@click.option("--format", "fmt", type=click.Choice(["text", "json", "html"]), default="text", show_default=True,
              help="html: the status page, one self-contained file (e.g. > status.html, a CI artifact).")
@_drift_option
def status(repo: str, prometheus: tuple[str, ...], key: str | None, config_path: str | None, consul_addr: str | None,
           consul_token_file: str | None, fmt: str, drift: str | None) -> int:
    """Which commit the live document came from, where it stands against HEAD, drift, and the last sync.

    Hand edits and conflicts need git only; under --drift refuse, judging drift needs Prometheus too. Exit 0 in
    order, 4 not at HEAD (or rewritten by an old-backend job), 5 hand edits pending, 6 conflicts (the most serious
    that applies), 1 error, 3 a live value that is no fields document.
    """
    from .usecases import settings
    from .usecases.status import status as run

    s = settings.resolve(repo=repo, config_path=config_path, prometheus=prometheus, key=key, drift=drift)
    kv = _consul(consul_addr, consul_token_file, s.consul_addresses)
    report = run(repo=s.repo, key=s.key, servers=s.servers, kv=kv, policy=s.drift, state_prefix=s.state_prefix,
                 order_ties=s.order_ties)
    click.echo(render.status(report, fmt))
    return STATUS_EXIT[report.standing]


STATUS_EXIT = {Standing.IN_ORDER: 0, Standing.BEHIND: 4, Standing.HAND_EDITS: 5, Standing.CONFLICTS: 6}


@main.command()
@_repo_option
@_prometheus_option
@_config_option
@click.option("--branch", help="Commit the stubs on this new branch (from HEAD) instead of writing files.")
def scaffold(repo: str, prometheus: tuple[str, ...], config_path: str | None, branch: str | None) -> int:
    """Write a YAML stub for every field Prometheus has that no file describes."""
    from .usecases import settings
    from .usecases.scaffold import scaffold as run

    s = settings.resolve(repo=repo, config_path=config_path, prometheus=prometheus)
    result = run(repo=s.repo, servers=s.servers, branch=branch)
    click.echo(render.scaffold_result(result))
    return 0


@main.command()
@_consul_options
@click.option("--git-url", help="Clone this remote (file://, https:// or ssh) into --workdir and follow --branch; "
                                "without it, --repo is used as it is, fetching nothing.")
@click.option("--workdir", type=click.Path(file_okay=False),
              help="Where --git-url is cloned (bare): absent, empty, or an earlier clone of the same URL.")
@click.option("--branch", default="main", show_default=True, help="The branch of --git-url to sync.")
@click.option("--git-token-file", type=click.Path(dir_okay=False, exists=True), help="HTTPS token for --git-url.")
@click.option("--git-ssh-key", type=click.Path(dir_okay=False, exists=True), help="SSH private key for --git-url.")
@click.option("--listen", default="127.0.0.1:9469", show_default=True, envvar="FIELDSYNC_LISTEN", show_envvar=True,
              help="HOST:PORT of /metrics, /healthz, /readyz and POST /hooks/github (the container image listens on "
                   "0.0.0.0:9469).")
@click.option("--webhook-secret-file", type=click.Path(dir_okay=False, exists=True),
              help="The GitHub webhook secret; without it, webhooks are refused.")
@click.option("--interval", type=float, default=60.0, show_default=True,
              help="Seconds between fetches (±10 % jitter); a new commit is synced.")
@click.option("--extract-interval", type=float, default=300.0, show_default=True,
              help="Seconds between syncs even without a new commit, so that new labels become fields.")
@click.option("--push-hand-edits", metavar="BRANCH",
              help="Keep BRANCH on the remote in line with the pending hand edits: a commit each time they change, "
                   "deleted once git holds them all.")
@click.option("--log-format", type=click.Choice(render.LOG_FORMATS), default="text", show_default=True)
@click.option("--grace", type=float, default=10.0, show_default=True,
              help="On SIGTERM, seconds to wait for the run in progress (which gives up before writing).")
@click.option("--lock-timeout", type=float, help="Seconds a run waits for a concurrent sync [default: 60].")
@click.option("--agentless", is_flag=True, envvar="FIELDSYNC_AGENTLESS", show_envvar=True,
              help="CONSUL_HTTP_ADDR is Consul's servers (consul-k8s's dataplane mode, say: no agent on this node), "
                   "maybe behind a load balancer: the election renews a session through any server instead of "
                   "passing a check on one agent. A dead leader is replaced within 20 s instead of 10.")
@click.option("--status-page", type=click.Choice(["on", "off"]), default="on", show_default=True,
              envvar="FIELDSYNC_STATUS_PAGE", show_envvar=True,
              help="GET / (the status page, read-only, refreshing itself) and GET /status.json on --listen.")
@click.option("--dry-run", is_flag=True, help="Build and compare, write nothing (a shadow of the real service).")
@click.option("--allow-rollback", is_flag=True, help="Write the branch even if the live document is from a newer "
                                                     "commit (after a force-push).")
@click.option("--force", is_flag=True, help="Write over hand edits the drift policy refuses to overwrite.")
@click.option("--allow-delete", is_flag=True, help="Remove more fields than the deletion budget allows.")
@_drift_option
def serve(repo: str, prometheus: tuple[str, ...], key: str | None, config_path: str | None,
          consul_addr: str | None, consul_token_file: str | None, git_url: str | None, workdir: str | None,
          branch: str, git_token_file: str | None, git_ssh_key: str | None, listen: str,
          webhook_secret_file: str | None, interval: float, extract_interval: float, push_hand_edits: str | None,
          log_format: str, grace: float, lock_timeout: float | None, agentless: bool, status_page: str,
          dry_run: bool, allow_rollback: bool, force: bool, allow_delete: bool, drift: str | None) -> int:
    """Run the sync as a service: at start, on every push (webhook or poll), on every hand edit of the key (a
    blocking query), and every --extract-interval; one replica leads, the others stand by.

    SIGTERM finishes the run in progress and exits 0; SIGHUP reads fieldsync.yaml and the webhook secret again.
    """
    from .adapters.httpserver import parse_listen
    from .usecases.serve import ServeOptions, Service
    from .usecases.serve.options import StatusPage

    if git_url and not workdir:
        raise UsageError("--git-url needs --workdir, the directory it is cloned into")
    if workdir and not git_url:
        raise UsageError("--workdir goes with --git-url")
    options = ServeOptions(
        repo=workdir or repo, connect=lambda addresses: _consul(consul_addr, consul_token_file, addresses),
        git_url=git_url, branch=branch, git_token_file=git_token_file, git_ssh_key=git_ssh_key,
        listen=parse_listen(listen), webhook_secret_file=webhook_secret_file, interval=interval,
        extract_interval=extract_interval, push_hand_edits=push_hand_edits, grace=grace, agentless=agentless,
        status_page=StatusPage(render.status_page, render.status_json, render.page_policy) if status_page == "on"
        else None, config_path=config_path,
        prometheus=prometheus, key=key, lock_timeout=lock_timeout, drift=drift, dry_run=dry_run,
        allow_rollback=allow_rollback, force=force, allow_delete=allow_delete)
    _consul(consul_addr, consul_token_file)  # the CONSUL_* settings are checked now, not in the first run
    written = threading.Lock()

    def log(event: dict[str, Any]) -> None:
        now = time.time()
        at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
        line = render.log_line(event, log_format, at)
        with written:
            click.echo(line, err=True)

    _serve_until_stopped(Service(options, log))
    return 0


def _serve_until_stopped(service: Any) -> None:
    """Run `service` until SIGTERM or Ctrl-C (then stop it gracefully); SIGHUP reloads it; any other signal (a pause
    and resume, SIGSTOP and SIGCONT) changes nothing. The service's threads are born with these signals blocked, so
    that only this thread takes them, through handlers that queue them (`SimpleQueue.put` is safe there) for the loop
    below; no handler runs in the middle of a run. (Not sigtimedwait: Python 3.11's returns an uninitialized siginfo
    when the process was stopped past the wait's deadline.)"""
    handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    received: queue.SimpleQueue[int] = queue.SimpleQueue()
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, handled)
    previous = {signum: signal.signal(signum, lambda signum, frame: received.put(signum)) for signum in handled}
    try:
        service.start()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, handled)
        while service.alive():
            try:
                signum = received.get(timeout=1.0)
            except queue.Empty:
                continue
            if signum == signal.SIGHUP:
                service.reload()
            else:
                break
        else:
            raise FieldsyncError("the service's worker stopped unexpectedly (a fieldsync bug: please report it)")
        service.stop()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
