"""Where the workflows `init` writes install fieldsync from: a source pinned to its content, never a name a package
index resolves (whoever registers that name would run their code in the job that holds the Consul write token).

Two forms: a git commit (`git+https://HOST/PATH@COMMIT`, the full 40-hex id: a tag or a branch can be moved) or a
wheel with its hash (`https://HOST/PATH/fieldsync-VERSION-py3-none-any.whl#sha256=HEX`, which pip checks). fieldsync's
dependencies, to the last transitive one, are pinned to the versions `init` ran with.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..errors import UsageError

PROJECT = "fieldsync"
FORMS = ("git+https://HOST/PATH@COMMIT (the full 40-hex commit id) or "
         "https://HOST/PATH/fieldsync-VERSION-py3-none-any.whl#sha256=HEX")
_GIT = re.compile(r"git\+(https|ssh)://[^\s@/]+(@[^\s@/]+)?/[^\s@]+@(?P<commit>[^\s@]+)")
_WHEEL = re.compile(r"https://[^\s#]+\.whl#sha256=(?P<hash>[^\s]+)")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_SHA256 = re.compile(r"[0-9a-f]{64}")

# name -> (installed version, its requirement strings), or None when it is not installed
Installed = Callable[[str], "tuple[str, list[str]] | None"]


def pinned_source(text: str) -> str:
    """`text` checked as a pinned source of fieldsync; the error says which part is missing."""
    source = text.strip()
    if m := _GIT.fullmatch(source):
        if not _COMMIT.fullmatch(m["commit"]):
            raise UsageError(f"--fieldsync-source {source}: {m['commit']!r} is not a full 40-hex commit id (a tag or "
                             "a branch can be moved to other code)")
        return source
    if m := _WHEEL.fullmatch(source):
        if not _SHA256.fullmatch(m["hash"]):
            raise UsageError(f"--fieldsync-source {source}: the sha256 is not 64 hex digits")
        return source
    if source.startswith(("git+http://", "http://")):
        raise UsageError(f"--fieldsync-source {source}: plain http can be altered on the way; use https or ssh")
    if source.endswith(".whl") or ".whl#" in source:
        raise UsageError(f"--fieldsync-source {source}: a wheel needs its hash, as #sha256=HEX, and an https URL")
    raise UsageError(f"--fieldsync-source {source}: not a pinned source; give {FORMS}")


def installed_from(direct_url: Mapping[str, Any] | None) -> str | None:
    """The pinned source this fieldsync was installed from, from its PEP 610 direct_url.json, when there is one the
    workflows can reach (a commit or a hashed wheel, fetched over the network); otherwise None."""
    if not direct_url:
        return None
    url = str(direct_url.get("url", ""))
    vcs, archive = direct_url.get("vcs_info") or {}, direct_url.get("archive_info") or {}
    if vcs.get("vcs") == "git" and vcs.get("commit_id"):
        candidate = f"git+{url}@{vcs['commit_id']}"
    else:
        digest = (archive.get("hashes") or {}).get("sha256") or archive.get("hash", "").partition("sha256=")[2]
        candidate = f"{url}#sha256={digest}"
    try:
        return pinned_source(candidate)
    except UsageError:
        return None


def pins(installed: Installed) -> list[str]:
    """`name==version` for every distribution fieldsync needs, transitively, as installed here (sorted by name).
    Requirements under a marker that does not hold here (another Python, an extra) are left out."""
    found: dict[str, str] = {}
    todo = [PROJECT]
    while todo:
        name = todo.pop()
        entry = installed(name)
        if entry is None:
            if name == PROJECT:
                raise UsageError("fieldsync's own metadata was not found: is it installed (pip install -e .)?")
            continue
        version, requires = entry
        if name != PROJECT:
            found[canonicalize_name(name)] = version
        for text in requires:
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                continue  # metadata pip would not act on either
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            if canonicalize_name(requirement.name) not in found:
                todo.append(requirement.name)
    return [f"{name}=={version}" for name, version in sorted(found.items())]


def requirements_text(source: str, pinned: list[str]) -> str:
    """The requirements file the workflows install from."""
    return "".join([
        "# Written by `fieldsync init`. The workflows install fieldsync from here: a source pinned to its\n",
        "# content, never a name a package index resolves. To upgrade, run the new version's `fieldsync init` in an\n",
        "# empty directory and copy this file from it, or edit the commit (or the wheel and its hash) and the pins.\n",
        f"{PROJECT} @ {source}\n",
        "# fieldsync's dependencies, at the versions installed where `fieldsync init` ran:\n",
        *(f"{p}\n" for p in pinned),
    ])
