"""Files the model stages hand each other: tuned params, per-epoch history, data digests.

Keras-free, so a stage can use it before TensorFlow loads.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from textrnn.config import format_validation_error
from textrnn.errors import DataError, ParamsError
from textrnn.io import atomic_path

P = TypeVar("P", bound=BaseModel)


def best_params_path(task: str, model: str) -> Path:
    """Where tune_<task>@<model> writes best_params.json and train_<task>@<model> reads it."""
    return Path("models") / task / model / "best_params.json"


def tuned_params(base: P, path: Path) -> tuple[P, bool]:
    """``base`` with the ``params`` of best_params.json (written by tune) laid over it.

    Returns the params and whether they were tuned; without the file, ``base`` unchanged.
    """
    if not path.is_file():
        return base, False
    try:
        best = json.loads(path.read_text(encoding="utf-8"))
        override, tuned = dict(best["params"]), bool(best["tuned"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: expected {{\"tuned\": bool, \"params\": {{...}}}} ({exc})") from None
    try:
        return type(base).model_validate({**base.model_dump(), **override}), tuned
    except ValidationError as exc:  # name the file and the bad keys
        raise ParamsError(format_validation_error(exc, type(base), str(path))) from None


def write_history(path: Path, history: dict[str, list[float]], columns: Sequence[str]) -> None:
    """CSV for the DVC training-curve plots: ``epoch`` (1-based) then ``columns``, one row per
    epoch; only the header for models trained without epochs."""
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", *columns])
        for index in range(len(history.get("loss", []))):
            writer.writerow([index + 1] + [f"{history[c][index]:.6g}" for c in columns])


def file_digest(*paths: str | Path) -> str:
    """sha256 over the bytes of ``paths`` (short): new data, new fingerprint."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:16]


SENTIMENT_SPLITS = Path("data/split/sentiment")
CHARLM_SPLITS = Path("data/split/charlm")
SENTIMENT_COLUMNS = ("text", "label", "origin")


def sentiment_split(name: str, columns: Sequence[str] = SENTIMENT_COLUMNS):
    """``data/split/sentiment/<name>.parquet`` (train, val or test) as a DataFrame of ``columns``."""
    import pandas as pd

    path = SENTIMENT_SPLITS / f"{name}.parquet"
    if not path.is_file():
        raise DataError(f"{path} is missing: run `dvc repro split@sentiment` first")
    table = pd.read_parquet(path)
    missing = set(columns) - set(table.columns)
    if missing:
        raise DataError(f"{path} lacks column(s) {sorted(missing)}")
    return table[list(columns)]


def charlm_split(name: str) -> str:
    """``data/split/charlm/<name>.txt`` (train, val or test)."""
    path = CHARLM_SPLITS / f"{name}.txt"
    if not path.is_file():
        raise DataError(f"{path} is missing: run `dvc repro split@charlm` first")
    return path.read_text(encoding="utf-8")
