"""Git repositories through pygit2: commits, the field files of a commit's tree, ancestry, branches, and the
remote that `serve` clones, fetches and pushes."""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import UsageError
from ..model import FIELDS_DIR, Entry, GitInfo

if TYPE_CHECKING:
    import pygit2


class SourceError(UsageError):
    """A path, repository or revision that cannot be read."""


def open_repo(path: str) -> pygit2.Repository:
    import pygit2

    found = pygit2.discover_repository(path)
    if found is None:
        raise SourceError(f"{path}: not inside a git repository")
    try:
        return pygit2.Repository(found)
    except pygit2.GitError as e:
        if "not owned by current user" in str(e):
            top = found.rstrip("/").removesuffix("/.git")
            raise SourceError(f"{top}: the repository belongs to another user, so git will not work in it; if you "
                              f"trust it: git config --global --add safe.directory {top}") from None
        raise SourceError(f"{path}: {e}") from None


def resolve_commit(repo: pygit2.Repository, rev: str) -> pygit2.Commit:
    import pygit2

    try:
        return repo.revparse_single(rev).peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError) as e:
        raise SourceError(f"revision '{rev}' not found: {e}") from None


def local_time(seconds: int, offset_minutes: int) -> datetime:
    """A git timestamp in the time zone it was recorded in."""
    return datetime.fromtimestamp(seconds, tz=timezone(timedelta(minutes=offset_minutes)))


def git_info(repo: pygit2.Repository, commit: pygit2.Commit, rev: str) -> GitInfo:
    """The commit, the ref it was named by (a sha or an expression such as HEAD~2 stays as given), and its time."""
    ref = rev
    with contextlib.suppress(KeyError, ValueError):
        ref = repo.head.name if rev == "HEAD" and not repo.head_is_detached else repo.lookup_reference_dwim(rev).name
    when = local_time(commit.commit_time, commit.commit_time_offset).isoformat()
    return GitInfo(str(commit.id), ref, when)


def has_commit(repo: pygit2.Repository, commit: str) -> bool:
    """Whether `commit` (a full hex id) is a commit of this clone."""
    import pygit2

    try:
        return isinstance(repo.get(pygit2.Oid(hex=commit)), pygit2.Commit)
    except (ValueError, TypeError, pygit2.GitError):
        return False


def ahead_behind(repo: pygit2.Repository, ours: str, theirs: str) -> tuple[int, int] | None:
    """(commits in ours not in theirs, commits in theirs not in ours); None when theirs is not in this clone."""
    import pygit2

    try:
        counts = repo.ahead_behind(pygit2.Oid(hex=ours), pygit2.Oid(hex=theirs))
    except (ValueError, KeyError, pygit2.GitError):
        return None
    return int(counts[0]), int(counts[1])


def head_branch(repo: pygit2.Repository) -> str:
    return "HEAD (detached)" if repo.head_is_detached else repo.head.name


def git_entries(repo: pygit2.Repository, commit: pygit2.Commit, paths: list[str]) -> list[Entry]:
    """Entries of a commit's tree at the given repository-relative paths (files or directories)."""
    import pygit2

    entries: list[Entry] = []
    for path in paths:
        path = posixpath.normpath(path).lstrip("/")
        try:
            obj = commit.tree if path in ("", ".") else commit.tree[path]
        except KeyError:
            raise SourceError(f"{path}: not in commit {str(commit.id)[:12]}") from None
        if isinstance(obj, pygit2.Tree):
            entries.extend(_git_entry(repo, posixpath.join(path, e.name or ""), e) for e in obj)
        else:
            entries.append(_git_entry(repo, path, obj))
    return entries


def field_entries(repo: pygit2.Repository, commit: pygit2.Commit) -> list[Entry]:
    """The entries of a commit's fields/; none when it has no fields/ (yet)."""
    try:
        return git_entries(repo, commit, [FIELDS_DIR])
    except SourceError:
        return []


def _git_entry(repo: pygit2.Repository, path: str, obj: pygit2.Object) -> Entry:
    from pygit2.enums import FileMode, ObjectType

    if obj.filemode == FileMode.LINK:
        return Entry(path, "link")
    if obj.type == ObjectType.TREE:
        return Entry(path, "dir")
    oid = obj.id
    return Entry(path, "file", str(oid), lambda: repo[oid].read_raw())


def _blob_data(tree: pygit2.Tree, path: str) -> bytes | None:
    import pygit2

    try:
        obj = tree[path]
    except KeyError:
        return None
    return obj.data if isinstance(obj, pygit2.Blob) else None


def file_versions(repo: pygit2.Repository, commit: pygit2.Commit,
                  path: str) -> Iterator[tuple[pygit2.Commit, bytes | None, bytes | None]]:
    """(commit, content before, content after) for each commit reachable from `commit` that changed `path`,
    newest first, each compared with its first parent."""
    from pygit2.enums import SortMode

    for current in repo.walk(commit.id, SortMode.TOPOLOGICAL | SortMode.TIME):
        after = _blob_data(current.tree, path)
        before = _blob_data(current.parents[0].tree, path) if current.parents else None
        if after != before:
            yield current, before, after


def author_line(commit: pygit2.Commit) -> tuple[str, str]:
    """('Name <email>', 'YYYY-MM-DD HH:MM +zzzz') of a commit's author."""
    when = local_time(commit.author.time, commit.author.offset).strftime("%Y-%m-%d %H:%M %z")
    return f"{commit.author.name} <{commit.author.email}>", when


def init_with_commit(directory: str, files: dict[str, bytes], message: str) -> str:
    """A new repository in `directory` (branch main) whose first commit holds `files` ({relative path: content}),
    written to the work tree too."""
    import pygit2

    repo = pygit2.init_repository(directory, initial_head="main")
    for relpath, data in files.items():
        target = os.path.join(directory, relpath)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(data)
    repo.index.add_all()
    repo.index.write()
    signature = _signature(repo)
    return str(repo.create_commit("HEAD", signature, signature, message, repo.index.write_tree(), []))


def _signature(repo: pygit2.Repository) -> pygit2.Signature:
    import pygit2

    try:
        return repo.default_signature
    except (KeyError, pygit2.GitError):
        return pygit2.Signature("fieldsync", "fieldsync@localhost")


def tree_with(repo: pygit2.Repository, files: dict[str, bytes]) -> str:
    """HEAD's tree with `files` ({path: content}, each at the top or one folder down) put in, as git objects."""
    import pygit2

    head = repo.head.peel(pygit2.Commit)
    root = repo.TreeBuilder(head.tree)
    folders: dict[str, dict[str, bytes]] = {}
    for path, data in files.items():
        folder, _, name = path.rpartition("/")
        if folder:
            folders.setdefault(folder, {})[name] = data
        else:
            root.insert(name, repo.create_blob(data), pygit2.enums.FileMode.BLOB)
    for folder, entries in folders.items():
        try:
            existing = head.tree[folder]
        except KeyError:
            existing = None
        builder = repo.TreeBuilder(existing) if isinstance(existing, pygit2.Tree) else repo.TreeBuilder()
        for name, data in entries.items():
            builder.insert(name, repo.create_blob(data), pygit2.enums.FileMode.BLOB)
        root.insert(folder, builder.write(), pygit2.enums.FileMode.TREE)
    return str(root.write())


def commit_tree(repo: pygit2.Repository, branch: str, tree: str, message: str, parents: list[str],
                author: tuple[str, str, datetime] | None = None) -> str:
    """A commit of `tree` with `parents`, by `author` (name, email, when) or the repository's user, and `branch`
    pointed at it: git objects only, the work tree is not touched."""
    import pygit2

    if author is None:
        signature = _signature(repo)
    else:
        name, email, when = author
        offset = (when.utcoffset() or timedelta()).total_seconds() // 60
        signature = pygit2.Signature(name, email, int(when.timestamp()), int(offset))
    oid = repo.create_commit(None, signature, signature, message, pygit2.Oid(hex=tree),
                             [pygit2.Oid(hex=p) for p in parents])
    repo.references.create(f"refs/heads/{branch}", oid, force=True)
    return str(oid)


def commit_files_on_branch(repo: pygit2.Repository, branch: str, files: dict[str, bytes], message: str) -> str:
    """Commit `files` ({path: content}) on a new branch from HEAD, through git objects only: the work tree is not
    touched. Raises SourceError when the branch exists."""
    if repo.lookup_branch(branch) is not None:
        raise SourceError(f"branch '{branch}' already exists")
    return commit_tree(repo, branch, tree_with(repo, files), message, [str(repo.head.target)])


def tree_of(repo: pygit2.Repository, commit: str) -> str:
    import pygit2

    return str(repo[pygit2.Oid(hex=commit)].peel(pygit2.Commit).tree_id)


def is_ancestor(repo: pygit2.Repository, ancestor: str, commit: str) -> bool:
    import pygit2

    return ancestor == commit or bool(repo.descendant_of(pygit2.Oid(hex=commit), pygit2.Oid(hex=ancestor)))


def merge_base(repo: pygit2.Repository, one: str, other: str) -> str | None:
    import pygit2

    base = repo.merge_base(pygit2.Oid(hex=one), pygit2.Oid(hex=other))
    return str(base) if base is not None else None


@dataclass(frozen=True)
class Credentials:
    """What authenticates to a remote (a pygit2 UserPass or Keypair; None: nothing), and the one host it is for: a
    redirect elsewhere never gets it."""

    credential: Any
    host: str | None


def remote_credentials(url: str, token_file: str | None = None, ssh_key: str | None = None) -> Credentials:
    """Credentials for the remote `url`: an HTTPS token (read now, so that a rotated file is picked up) or an SSH
    key."""
    import pygit2

    host = urlsplit(url).hostname if "://" in url else url.rpartition("@")[2].partition(":")[0]
    token = None
    if token_file:
        try:
            with open(token_file, encoding="utf-8") as f:
                token = f.read().strip()
        except OSError as e:
            raise SourceError(f"git token file {token_file}: {e.strerror}") from None
    if ssh_key:
        if not os.path.isfile(ssh_key):
            raise SourceError(f"git SSH key {ssh_key}: no such file")
        return Credentials(pygit2.Keypair("git", f"{ssh_key}.pub" if os.path.isfile(f"{ssh_key}.pub") else None,
                                          ssh_key, ""), host)
    return Credentials(pygit2.UserPass("x-access-token", token) if token else None, host)


def _callbacks(credentials: Credentials) -> Any:
    """libgit2's callbacks for a remote call: the credentials, for their own host only; and the refusals a push
    reports, gathered in `.refused`."""
    import pygit2

    class Callbacks(pygit2.RemoteCallbacks):
        refused: list[str] = []

        def credentials(self, url: str, username_from_url: str | None, allowed_types: int) -> Any:
            asked = urlsplit(url).hostname if "://" in url else url.rpartition("@")[2].partition(":")[0]
            if credentials.credential is None or asked != credentials.host:
                raise pygit2.GitError(f"no credentials for {asked}: they are for {credentials.host} only")
            return credentials.credential

        def push_update_reference(self, refname: str, message: str | None) -> None:
            if message:
                self.refused.append(f"{refname}: {message}")

    callbacks = Callbacks()
    callbacks.refused = []
    return callbacks


def clone_or_open(url: str, workdir: str, credentials: Credentials) -> pygit2.Repository:
    """A bare clone of `url` in `workdir`: cloned when `workdir` is absent or empty, reused when it holds a clone of
    the same URL; anything else is refused rather than touched."""
    import pygit2

    if os.path.isdir(workdir) and os.listdir(workdir):
        try:
            repo = pygit2.Repository(workdir)
        except pygit2.GitError:
            raise SourceError(f"--workdir {workdir}: neither empty nor a clone made by fieldsync serve; give an empty "
                              "or new directory") from None
        origin = next((r.url for r in repo.remotes if r.name == "origin"), None)
        if origin != url:
            raise SourceError(f"--workdir {workdir} holds a clone of {origin}, not of {url}; give another directory")
        return repo
    try:
        return pygit2.clone_repository(url, workdir, bare=True, callbacks=_callbacks(credentials))
    except pygit2.GitError as e:
        raise SourceError(f"cloning {url}: {_remote_reason(e)}") from None


def reclone(url: str, workdir: str, credentials: Credentials) -> pygit2.Repository:
    """A fresh bare clone of `url` in `workdir`, replacing what is there (a damaged clone)."""
    for name in os.listdir(workdir) if os.path.isdir(workdir) else ():
        path = os.path.join(workdir, name)
        shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.remove(path)
    return clone_or_open(url, workdir, credentials)


class BranchGone(SourceError):
    """The remote has no such branch (deleted, or never made)."""


def _fetch(repo: pygit2.Repository, branch: str, credentials: Credentials) -> str | None:
    """Fetch `branch` from origin into its remote-tracking ref, dropped first so that a branch deleted there is
    seen; its commit, or None when origin has no such branch. The repository's file handles are released after."""
    import pygit2

    tracking = f"refs/remotes/origin/{branch}"
    if tracking in repo.references:
        repo.references.delete(tracking)
    try:
        repo.remotes["origin"].fetch([f"+refs/heads/{branch}:{tracking}"], callbacks=_callbacks(credentials))
    except (pygit2.GitError, KeyError) as e:
        raise SourceError(f"fetching {branch} from {_origin(repo)}: {_remote_reason(e)}") from None
    finally:
        repo.free()
    return str(repo.references[tracking].target) if tracking in repo.references else None


def fetch_branch(repo: pygit2.Repository, branch: str, credentials: Credentials) -> str:
    """Fetch `branch` from origin, point the local branch and HEAD at it, and return its commit; BranchGone when
    origin has no such branch."""
    oid = _fetch(repo, branch, credentials)
    if oid is None:
        raise BranchGone(f"{_origin(repo)} has no branch {branch} (deleted?)")
    repo.references.create(f"refs/heads/{branch}", oid, force=True)
    repo.set_head(f"refs/heads/{branch}")
    return oid


def fetch_tip(repo: pygit2.Repository, branch: str, credentials: Credentials) -> str | None:
    """Fetch `branch` from origin into the local branch of that name, leaving HEAD alone; its commit, or None (and
    no local branch) when origin has no such branch."""
    if f"refs/heads/{branch}" in repo.references:
        repo.references.delete(f"refs/heads/{branch}")
    oid = _fetch(repo, branch, credentials)
    if oid is not None:
        repo.references.create(f"refs/heads/{branch}", oid, force=True)
    return oid


def push_branch(repo: pygit2.Repository, branch: str, credentials: Credentials, delete: bool = False) -> None:
    """Push the local `branch` to origin under the same name (`delete`: delete it there); raises SourceError when
    the remote refuses."""
    import pygit2

    callbacks = _callbacks(credentials)
    source = "" if delete else f"refs/heads/{branch}"
    try:
        repo.remotes["origin"].push([f"{source}:refs/heads/{branch}"], callbacks=callbacks)
    except pygit2.GitError as e:
        raise SourceError(f"pushing {branch} to {_origin(repo)}: {_remote_reason(e)}") from None
    finally:
        repo.free()
    if callbacks.refused:
        raise SourceError(f"{_origin(repo)} refused {'; '.join(callbacks.refused)}")
    if delete and f"refs/heads/{branch}" in repo.references:
        repo.references.delete(f"refs/heads/{branch}")


MAX_PACKS = 4  # pack files a clone may gather (each fetch adds one) before it is packed into one again
OPEN_PACKS = 4  # pack files libgit2 keeps open in this process at the most (its default: no limit)


def limit_open_packs() -> None:
    """Cap the pack files libgit2 holds open, whichever repository objects (a run's own, not yet collected) hold
    them: a long-running process must not gather descriptors, those of packs since deleted included."""
    import pygit2

    pygit2.settings.mwindow_file_limit = OPEN_PACKS


def compact(repo: pygit2.Repository, max_packs: int = MAX_PACKS) -> bool:
    """Pack every object of the clone into one pack file once fetches have left more than `max_packs`, and remove
    the packs and loose objects it replaces; whether it did."""
    objects = os.path.join(repo.path, "objects")
    packs = os.path.join(objects, "pack")
    before = set(os.listdir(packs)) if os.path.isdir(packs) else set()
    if sum(name.endswith(".pack") for name in before) <= max_packs:
        return False
    repo.pack()
    repo.free()
    if not any(name.endswith(".pack") for name in set(os.listdir(packs)) - before):
        return False
    for name in before:
        if name.startswith("pack-"):
            os.remove(os.path.join(packs, name))
    for name in os.listdir(objects):
        if len(name) == 2 and all(c in "0123456789abcdef" for c in name):
            shutil.rmtree(os.path.join(objects, name))
    repo.free()
    return True


def intact(repo: pygit2.Repository, commit: str) -> bool:
    """Whether every object of `commit`'s tree reads back: a clone damaged on disk (a pack gone or cut short) fails."""
    import pygit2

    try:
        stack = [resolve_commit(repo, commit).tree]
        while stack:
            for entry in stack.pop():
                obj = repo[entry.id]
                if isinstance(obj, pygit2.Tree):
                    stack.append(obj)
                else:
                    obj.read_raw()
    except (KeyError, ValueError, SourceError, pygit2.GitError):
        return False
    return True


def read_at(repo: pygit2.Repository, rev: str, path: str) -> bytes | None:
    """A file of a commit; None when the commit has no such file."""
    return _blob_data(resolve_commit(repo, rev).tree, path)


def _remote_reason(error: Exception) -> str:
    """libgit2's words for a remote's failure, with what to check when it is the credentials."""
    text = str(error)
    if "authentication" in text:
        return f"the remote refused the credentials: check --git-token-file or --git-ssh-key ({text})"
    return text


def _origin(repo: pygit2.Repository) -> str:
    return next((r.url for r in repo.remotes if r.name == "origin"), None) or "origin"
