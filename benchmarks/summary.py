"""One summary row per figure, collected by `make bench` (benchmarks/run_all.py).

A benchmark calls :func:`emit` with its headline figures; when $TEXTRNN_BENCH_JSON names a file,
they are written there as JSON (run_all sets it), otherwise nothing happens.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

ENV = "TEXTRNN_BENCH_JSON"


def emit(rows: list[dict]) -> None:
    """``rows``: [{"benchmark", "what", "value", "unit", "naive", "ratio", "target"}...]."""
    path = os.environ.get(ENV)
    if path:
        Path(path).write_text(json.dumps(rows, indent=1), encoding="utf-8")
