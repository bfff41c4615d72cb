"""Write docs/reference/commands.md from the command line itself: every command's --help, as `fieldsync` prints it.
tests/test_docs.py fails when the file differs from what this writes, so the reference cannot drift from the code.

Usage: .venv/bin/python scripts/reference.py
"""

from __future__ import annotations

from pathlib import Path

import click

from fieldsync.cli import main as fieldsync

TARGET = Path(__file__).resolve().parents[1] / "docs" / "reference" / "commands.md"
WIDTH = 110  # help is wrapped at a fixed width: the same text whatever terminal writes it


def _help(command: click.Command, name: str, parent: click.Context | None = None) -> str:
    context = click.Context(command, info_name=name, parent=parent, max_content_width=WIDTH, terminal_width=WIDTH,
                            **({} if parent else fieldsync.context_settings))  # as `fieldsync` makes them
    return command.get_help(context)


def reference() -> str:
    """The reference: the overview, then each command in the order `fieldsync --help` lists them."""
    top = click.Context(fieldsync, info_name="fieldsync", max_content_width=WIDTH, terminal_width=WIDTH,
                        **fieldsync.context_settings)
    parts = ["# Command reference", "",
             "Generated from the command line by `scripts/reference.py`; do not edit by hand "
             "(`tests/test_docs.py` checks it).", "", "```", _help(fieldsync, "fieldsync"), "```"]
    assert isinstance(fieldsync, click.Group)
    for name in fieldsync.list_commands(top):
        command = fieldsync.get_command(top, name)
        assert command is not None
        parts += ["", f"## `fieldsync {name}`", "", "```", _help(command, name, top), "```"]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(reference(), encoding="utf-8")
    print(f"wrote {TARGET}")
