"""The documentation that is generated from the code stays as the code says."""

from __future__ import annotations

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_command_reference_is_what_every_help_says() -> None:
    script = runpy.run_path(str(ROOT / "scripts" / "reference.py"))
    written = (ROOT / "docs" / "reference" / "commands.md").read_text(encoding="utf-8")
    assert written == script["reference"](), (
        "docs/reference/commands.md differs from the command line's help: run .venv/bin/python scripts/reference.py")
    for command in ("validate", "extract", "init", "sync", "plan", "import", "status", "history", "scaffold", "serve"):
        assert f"## `fieldsync {command}`" in written
    assert "--status-page [on|off]" in written and "--metrics-file" in written and "--grace" in written
