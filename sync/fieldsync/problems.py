"""A problem found in an input file, and its renderings for people, GitHub and machines."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One error, located at a 1-based line and column of a file."""

    path: str
    line: int
    column: int
    message: str

    def text(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: error: {self.message}"

    def github(self) -> str:
        def esc(value: str, prop: bool = False) -> str:
            value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
            return value.replace(":", "%3A").replace(",", "%2C") if prop else value

        return (
            f"::error file={esc(self.path, True)},line={self.line},col={self.column},"
            f"title=fieldsync::{esc(self.message)}"
        )


FORMATS = ("text", "github", "json")


def render(problems: list[Problem], fmt: str, checked: int) -> str:
    """Render problems (already sorted) plus a one-line summary in the requested format."""
    if fmt == "json":
        return json.dumps(
            {"valid": not problems, "files_checked": checked, "problems": [asdict(p) for p in problems]},
            indent=2,
        )
    lines = [p.github() if fmt == "github" else p.text() for p in problems]
    files = len({p.path for p in problems})
    if problems:
        lines.append(f"{len(problems)} problem(s) in {files} file(s); {checked} file(s) checked")
    else:
        lines.append(f"{checked} field file(s) valid")
    return "\n".join(lines)
