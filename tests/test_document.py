"""Reading live values of every shape, and the document schema."""

from __future__ import annotations

import json

import jsonschema
import pytest

from fieldsync.errors import Refused
from fieldsync.model import GitInfo, Rule, ServerStatus
from fieldsync.rules import document, schemas
from fieldsync.rules.document import build_document

DOC = build_document({"company": {"name": "company"}},
                     [ServerStatus("p1", "u", True, rules=(Rule("env", "__meta_env", "(.*)", "$1"),))],
                     None, GitInfo("b" * 40, "refs/heads/main", "2026-01-01T00:00:00+00:00"), "t0")


def test_built_document_matches_its_schema() -> None:
    jsonschema.Draft202012Validator(schemas.load("document")).validate(DOC)


def test_decode_bare_and_envelope() -> None:
    bare = document.encode(DOC)
    assert document.decode(bare, "k") == DOC
    envelope = json.dumps({"data": DOC, "meta": {"updated_by": "old-ui"}}).encode()
    assert document.decode(envelope, "k") == DOC
    assert document.decode(None, "k") is None


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'{"data": {"x": 1}}', b"\xff"])
def test_decode_refuses_what_is_not_a_fields_document(raw: bytes) -> None:
    with pytest.raises(Refused):
        document.decode(raw, "k")


def test_encode_is_compact_and_utf8() -> None:
    doc = dict(DOC, fields=[dict(DOC["fields"][0], display_name="Região")])
    raw = document.encode(doc)
    assert "Região".encode() in raw and b", " not in raw


def test_contract_guard_names_what_the_old_readers_would_miss() -> None:
    from fieldsync.rules import guards

    assert guards.contract(DOC) is None
    broken = json.loads(document.encode(DOC))
    del broken["extraction_status"]["server_status"][0]["hostname"]
    reason = guards.contract(broken)
    assert reason is not None and "extraction_status/server_status/0" in reason and "'hostname'" in reason


def test_the_hand_edits_a_document_holds_are_read_back_with_their_bases() -> None:
    from fieldsync.model import HandEdit

    held = (HandEdit("company", "display_name", "Company", "By Hand"), HandEdit("a", "order", 999, None))
    doc = build_document({}, [], None, GitInfo("b" * 40, "refs/heads/main", "t"), "t0", held)
    assert doc["hand_edits"][0] == {"field": "a", "attribute": "order", "value": None, "base": 999}
    assert document.held_edits(doc) == tuple(sorted(held, key=lambda e: e.field))
    jsonschema.Draft202012Validator(schemas.load("document")).validate(doc)
    for junk in ({"company": {"display_name": "x"}}, [{"field": "a"}], [5], None):
        assert document.held_edits({"hand_edits": junk}) == ()
