"""--metrics-file: the metrics of one-shot syncs in a node_exporter textfile, updated after every run."""

from __future__ import annotations

import os
import time

from .. import __version__
from ..adapters import files
from ..errors import FieldsyncError
from ..model import Outcome, SyncReport
from ..rules import metrics


def record_run(path: str, outcome: Outcome, seconds: float, report: SyncReport | None = None) -> None:
    """Count this run in the textfile at `path` (counters carried over from the file as it was), written
    atomically so that a collector never reads half a file."""
    previous = metrics.MetricState()
    if os.path.exists(path):
        try:
            previous = metrics.parse(files.read_bytes(path, "metrics file").decode("utf-8"))
        except (ValueError, KeyError, UnicodeDecodeError) as e:
            raise FieldsyncError(f"metrics file {path} is not one fieldsync wrote ({e}); move it away") from None
    state = metrics.observe(previous, outcome, seconds, time.time(), report)
    files.write_atomically(path, metrics.exposition(state, __version__))
