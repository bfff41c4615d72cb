"""GitHub webhook deliveries: is a delivery signed with our secret, and what does it ask for.

GitHub signs the raw body with HMAC-SHA256 and sends `X-Hub-Signature-256: sha256=<hex>`; a delivery whose signature
does not match is rejected before its body is even parsed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, replace

MAX_BODY = 5 * 1024 * 1024  # GitHub caps payloads at 25 MB, but a push's is a few KB: a few hundred commits fit


@dataclass(frozen=True)
class Verdict:
    """What to answer a delivery, and whether it asks for a fetch and sync."""

    status: int
    result: str  # accepted | rejected | ignored
    message: str
    sync: bool = False
    commit: str | None = None  # the pushed commit, when the delivery names it

    def refused(self, status: int, message: str) -> Verdict:
        """This push, not acted on after all."""
        return replace(self, status=status, result="rejected", sync=False, message=message)

    def passed_on(self) -> Verdict:
        """This push, passed on by a standby to the leader."""
        return replace(self, message="passed on to the leader")


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signed(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether `header` is the body's signature under `secret`, compared in constant time."""
    return header is not None and hmac.compare_digest(signature(secret, body).encode(), header.strip().encode())


def judge(secret: bytes | None, event: str | None, header: str | None, body: bytes, branch: str) -> Verdict:
    """The answer to one delivery: 401 unless signed with `secret`; a ping 200; a push to `branch` 202 (sync);
    another branch, a tag or another event 200 (nothing to do)."""
    if secret is None:
        return Verdict(404, "rejected", "webhooks are off: start serve with --webhook-secret-file")
    if not signed(secret, body, header):
        why = "no X-Hub-Signature-256 header" if header is None else "X-Hub-Signature-256 does not match"
        return Verdict(401, "rejected", f"{why}; nothing done")
    if event == "ping":
        return Verdict(200, "accepted", "pong")
    if event != "push":
        return Verdict(200, "ignored", f"event {event or '(none)'} ignored: only push events trigger a sync")
    try:
        payload = json.loads(body)
        ref, after = payload.get("ref"), payload.get("after")
    except (ValueError, AttributeError):
        return Verdict(400, "rejected", "the push body is not a JSON object; nothing done")
    if ref != f"refs/heads/{branch}":
        return Verdict(200, "ignored", f"push to {ref} ignored: serve follows refs/heads/{branch}")
    return Verdict(202, "accepted", "fetch and sync triggered", sync=True,
                   commit=after if isinstance(after, str) else None)


REPLAY_WINDOW = 3600.0  # seconds a delivery's id is remembered
REMEMBERED = 1000  # delivery ids at the most

Deliveries = tuple[tuple[str, float], ...]  # (X-GitHub-Delivery id, when it came), oldest first


def remember(recent: Deliveries, delivery: str, now: float) -> tuple[bool, Deliveries]:
    """(whether `delivery` came already within the window: a replay; the ids remembered after this one)."""
    kept = tuple((d, at) for d, at in recent if now - at < REPLAY_WINDOW)[-(REMEMBERED - 1):]
    if any(d == delivery for d, _ in kept):
        return True, kept
    return False, (*kept, (delivery, now))


def forget(recent: Deliveries, delivery: str) -> Deliveries:
    """The ids remembered without `delivery`: one not acted on may come again."""
    return tuple((d, at) for d, at in recent if d != delivery)


def duplicate(delivery: str) -> Verdict:
    return Verdict(200, "ignored", f"delivery {delivery} came already; nothing done")
