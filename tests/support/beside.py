"""`fieldsync serve` beside the old backend (support/oldbackend.py): the scenarios of issue 14 that the tests assert
on (tests/test_oldbackend.py) and bench/oldbackend_bench.py measures. Each returns what happened; none asserts."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pygit2

from fieldsync.localservers import ConsulAgent, Prometheus
from fieldsync.rules import document

from . import kv
from .gitrepo import GitRepo, bare_remote
from .oldbackend import OldBackend, extracted_of
from .serving import Served, secret_file, serve_clone

Expected = dict[tuple[str, str], object]  # (field, attribute) -> the value the live document must hold
# Customizations the old backend's prewarm resets: a text, a url, an icon, and a select with options.
TYPES: Expected = {("company", "field_type"): "text", ("company", "icon"): "building", ("site", "field_type"): "url",
                   ("env", "field_type"): "select", ("env", "options"): ["prod", "staging", "dev", "test"]}
REPAIRED_WITHIN = 5.0  # seconds, per restart or wipe: the bound


def typed(repo: GitRepo) -> str:
    """Commit TYPES into the repository's field files."""
    repo.write("fields/company.yaml", "name: company\ndisplay_name: Company\nfield_type: text\nicon: building\n"
                                      "order: 10\n")
    repo.write("fields/site.yaml", "name: site\nfield_type: url\norder: 50\n")
    return repo.commit("types the old UI cannot keep")


def wait_until(condition: Callable[[], bool], timeout: float) -> float | None:
    """Seconds until `condition` holds; None when it did not within `timeout`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            return None
        time.sleep(0.01)
    return time.monotonic() - started


def missing(agent: ConsulAgent, key: str, expected: Expected) -> list[str]:
    """The `field.attribute` of each expected value the live document lacks (all of them when there is none)."""
    if kv.live(agent, key)[0] is None:
        return [f"{name}.{attribute}" for name, attribute in expected]
    records = kv.records(agent, key)
    return [f"{name}.{attribute}" for (name, attribute), value in expected.items()
            if records.get(name, {}).get(attribute) != value]


def started(agent: ConsulAgent, repo: GitRepo, prometheus: Prometheus, tmp_path: Path, key: str,
            *extra: str) -> tuple[Served, OldBackend]:
    """serve following a bare remote of `repo`, once it has written the key; and the old backend beside it."""
    remote = bare_remote(tmp_path / "remote.git", repo)
    served = serve_clone(agent, remote, tmp_path / "work", prometheus.url, key, *extra, secret=secret_file(tmp_path))
    served.wait_for(lambda e: e["event"] == "sync" and e["outcome"] == "written")
    return served, OldBackend(agent, key, extracted_of(agent, key))


def ui_edit(agent: ConsulAgent, key: str, backend: OldBackend, name: str, **changes: object) -> None:
    """One edit in the old UI, waited for until serve has written a document that holds it as a hand edit (a log
    line of serve's may be one of an earlier run, still on its way)."""
    backend.edit(name, **changes)

    def held() -> bool:
        doc = kv.live(agent, key)[0] or {}
        return doc.get("source") == "fieldsync" and {(e.field, e.attribute, e.live) for e in
                                                     document.held_edits(doc)} >= {(name, a, v) for a, v in
                                                                                   changes.items()}
    assert wait_until(held, 10) is not None, f"serve did not take the UI edit of {name} within 10 s"


@dataclass
class Rounds:
    """Per round, the seconds until the live document held every expected value again (None: not within the
    bound), and how many expected values it lacked at the bound."""

    expected: Expected
    seconds: list[float | None] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)  # per round, what was missing at the bound

    def settle(self, agent: ConsulAgent, key: str) -> None:
        self.seconds.append(wait_until(lambda: not missing(agent, key, self.expected), REPAIRED_WITHIN))
        self.lost += missing(agent, key, self.expected)


def restarts(agent: ConsulAgent, key: str, backend: OldBackend, rounds: int = 20) -> Rounds:
    """5 UI edits, then `rounds` restarts of the old backend (its prewarm); every fourth has another UI edit land
    between the prewarm's read and its write (its extraction takes seconds there)."""
    result = Rounds(dict(TYPES))
    for n, name in enumerate(["cluster", "model", "rack", "team", "tier"]):
        ui_edit(agent, key, backend, name, description=f"typed in the UI {n}")
        result.expected[(name, "description")] = f"typed in the UI {n}"
    meanwhile = iter(["owner", "serial_number", "tenant", "zone", "url"] * rounds)
    for restart in range(rounds):
        if restart % 4 == 3:
            name = next(meanwhile)

            def edit_meanwhile(name: str = name, restart: int = restart) -> None:
                ui_edit(agent, key, OldBackend(agent, key, backend.extracted), name, display_name=f"UI {restart}")
            backend.prewarm(during=edit_meanwhile)
            result.expected[(name, "display_name")] = f"UI {restart}"
        else:
            backend.prewarm()
        result.settle(agent, key)
    return result


def wipes(agent: ConsulAgent, key: str, served: Served, backend: OldBackend, rounds: int = 10,
          pending: int = 22) -> Rounds:
    """`pending` UI edits, then `rounds` wipes of the key: deleted alone, then refilled by the old backend's empty-key
    fallback, then restored from its backup by a restart's prewarm, in turn."""
    result = Rounds(dict(TYPES))
    for n, name in enumerate(sorted(kv.records(agent, key))[:pending]):
        backend.edit(name, placeholder=f"pending {n}")
        result.expected[(name, "placeholder")] = f"pending {n}"
    wait_until(lambda: served.metric("fieldsync_hand_edits_pending") == pending, 10)
    backend.prewarm()  # leaves its backup behind, for the restores
    wait_until(lambda: not missing(agent, key, result.expected), REPAIRED_WITHIN)
    for round_ in range(rounds):
        kv.client(agent).kv.delete(key)
        if round_ % 3 == 1:
            backend.fallback()  # a read of its fields API finds the key empty
        elif round_ % 3 == 2:
            backend.prewarm()  # a restart finds it empty: restores its backup, then merges
        result.settle(agent, key)
    return result


@dataclass
class Branch:
    """What the remote holds after UI edits on distinct fields: its branches, and for each edit whether some state
    of the hand-edits branch holds it, and whether its latest state does."""

    branches: list[str]
    in_history: int
    in_latest: int
    states: int


def one_branch(agent: ConsulAgent, key: str, served: Served, backend: OldBackend, remote: Path,
               edits: int = 10) -> Branch:
    """`edits` UI edits on distinct fields, every fourth saved by a second backend process from its own stale cache
    (the old system's own race: it writes back a copy without the edits before it)."""
    other = OldBackend(agent, key, backend.extracted)
    other.read(fresh=True)
    names = [n for n in sorted(kv.records(agent, key)) if n not in ("company", "site")][:edits]
    for n, name in enumerate(names):
        stale = n % 4 == 3
        (other if stale else backend).edit(name, fresh=not stale, description=f"edit {n}")
        served.wait_for(lambda e, pending=n + 1: e["event"] == "push" and e.get("hand_edits") == pending)
    repo = pygit2.Repository(str(remote))
    tip = repo.branches["ui-edits"].peel(pygit2.Commit)
    states = [c for c in repo.walk(tip.id) if c.message.startswith("Hand edits in")]

    def holds(commit: pygit2.Commit, n: int, name: str) -> bool:
        return f"description: edit {n}" in commit.tree["fields"][f"{name}.yaml"].data.decode()

    return Branch(sorted(repo.branches.local), sum(any(holds(c, n, name) for c in states) for n, name in
                                                   enumerate(names)),
                  sum(holds(tip, n, name) for n, name in enumerate(names)), len(states))
