"""rules/pinning.py: the sources init's workflows may install fieldsync from, and the pins of its dependencies."""

from __future__ import annotations

import pytest

from fieldsync.errors import UsageError
from fieldsync.rules import pinning

COMMIT = "0123456789abcdef0123456789abcdef01234567"
SHA = "ab" * 32
GIT = f"git+https://git.example.com/platform/fieldsync.git@{COMMIT}"
WHEEL = f"https://files.example.com/fieldsync-0.2.0-py3-none-any.whl#sha256={SHA}"


@pytest.mark.parametrize("source", [GIT, f"  {GIT}\n", f"git+ssh://git@git.example.com/platform/fieldsync.git@{COMMIT}",
                                    f"git+https://deploy@git.example.com:8443/fieldsync@{COMMIT}", WHEEL])
def test_a_commit_or_a_hashed_wheel_is_a_pinned_source(source: str) -> None:
    assert pinning.pinned_source(source) == source.strip()


@pytest.mark.parametrize(("source", "says"), [
    ("fieldsync", "not a pinned source; give git+https://"),
    ("fieldsync==0.1.0", "not a pinned source"),
    ("git+https://git.example.com/fieldsync.git@v0.2.0", "'v0.2.0' is not a full 40-hex commit id"),
    (f"git+https://git.example.com/fieldsync.git@{COMMIT[:12]}", "is not a full 40-hex commit id"),
    (f"git+https://git.example.com/fieldsync.git@{COMMIT.upper()}", "is not a full 40-hex commit id"),
    ("git+https://git.example.com/fieldsync.git", "not a pinned source"),
    (f"git+http://git.example.com/fieldsync.git@{COMMIT}", "plain http can be altered"),
    (f"http://files.example.com/fieldsync-0.2.0-py3-none-any.whl#sha256={SHA}", "plain http can be altered"),
    (f"git+file:///srv/fieldsync.git@{COMMIT}", "not a pinned source"),
    ("https://files.example.com/fieldsync-0.2.0-py3-none-any.whl", "a wheel needs its hash"),
    (f"https://files.example.com/fieldsync-0.2.0-py3-none-any.whl#md5={SHA[:32]}", "a wheel needs its hash"),
    (f"file:///srv/fieldsync-0.2.0-py3-none-any.whl#sha256={SHA}", "a wheel needs its hash, as #sha256=HEX, and an "
                                                                    "https URL"),
    (f"https://files.example.com/fieldsync-0.2.0-py3-none-any.whl#sha256={SHA[:-1]}", "not 64 hex digits"),
    (f"https://files.example.com/fieldsync-0.2.0.tar.gz#sha256={SHA}", "not a pinned source"),
])
def test_anything_else_is_refused_saying_what_is_missing(source: str, says: str) -> None:
    with pytest.raises(UsageError, match="--fieldsync-source") as refused:
        pinning.pinned_source(source)
    assert says in str(refused.value)


@pytest.mark.parametrize(("direct_url", "source"), [
    ({"url": "https://git.example.com/platform/fieldsync.git", "vcs_info": {"vcs": "git", "commit_id": COMMIT,
                                                                            "requested_revision": "main"}}, GIT),
    ({"url": WHEEL.partition("#")[0], "archive_info": {"hashes": {"sha256": SHA}}}, WHEEL),
    ({"url": WHEEL.partition("#")[0], "archive_info": {"hash": f"sha256={SHA}"}}, WHEEL),  # the older field
    ({"url": "file:///work/fieldsync", "dir_info": {"editable": True}}, None),
    ({"url": "file:///tmp/fieldsync-0.2.0-py3-none-any.whl", "archive_info": {"hashes": {"sha256": SHA}}}, None),
    ({"url": WHEEL.partition("#")[0], "archive_info": {}}, None),
    ({"url": "https://hg.example.com/fieldsync", "vcs_info": {"vcs": "hg", "commit_id": COMMIT}}, None),
    ({"url": "git+file:///srv/fieldsync.git", "vcs_info": {"vcs": "git", "commit_id": COMMIT}}, None),
    ({}, None),
    (None, None),
])
def test_where_this_fieldsync_came_from_is_reused_only_when_pinned_and_reachable(direct_url: dict | None,
                                                                                 source: str | None) -> None:
    assert pinning.installed_from(direct_url) == source


def test_every_dependency_is_pinned_to_what_is_installed_transitively() -> None:
    installed = {
        "fieldsync": ("0.2.0", ["Click>=8.1", "jsonschema>=4.18", "pytest>=8; extra == 'test'",
                                "tomli; python_version < '3.0'", "waitress"]),
        "click": ("8.5.1", []),
        "jsonschema": ("4.26.0", ["attrs>=22", "referencing", "not a requirement !!", "rfc3987; extra == 'format'"]),
        "attrs": ("26.1.0", ["jsonschema"]),  # a cycle
        "referencing": ("0.37.0", ["attrs", "fieldsync"]),  # and one back to fieldsync
        "waitress": ("3.0.2", ["missing-one"]),  # metadata naming what is not installed
        "pytest": ("9.2.0", []),
        "tomli": ("2.0.0", []),
    }
    asked: list[str] = []

    def lookup(name: str) -> tuple[str, list[str]] | None:
        asked.append(name)
        return installed.get(name.lower())

    assert pinning.pins(lookup) == ["attrs==26.1.0", "click==8.5.1", "jsonschema==4.26.0", "referencing==0.37.0",
                                    "waitress==3.0.2"]
    assert "pytest" not in asked and "tomli" not in asked and "rfc3987" not in asked  # markers that do not hold
    assert asked.count("fieldsync") == 2 and "missing-one" in asked


def test_pins_need_fieldsync_itself_installed() -> None:
    with pytest.raises(UsageError, match="fieldsync's own metadata was not found"):
        pinning.pins(lambda name: None)


def test_the_requirements_file_names_the_source_then_the_pins() -> None:
    text = pinning.requirements_text(GIT, ["attrs==26.1.0", "click==8.5.1"])
    requirements = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert requirements == [f"fieldsync @ {GIT}", "attrs==26.1.0", "click==8.5.1"]
    assert text.startswith("# Written by `fieldsync init`") and text.endswith("click==8.5.1\n")
