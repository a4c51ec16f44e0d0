"""Reading and writing the files the model stages hand each other (their paths: textrnn.paths):
model specs, tuned params, trained-model records, per-epoch history, data digests.

Keras-free, so a stage can use it before TensorFlow loads.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from textrnn import paths
from textrnn.config import ModelTuneParams, format_validation_error
from textrnn.errors import DataError, ParamsError
from textrnn.io import atomic_path, write_json
from textrnn.model_files import read_json
from textrnn.paths import CHARLM_SPLITS, SENTIMENT_SPLITS

P = TypeVar("P", bound=BaseModel)


def _read_json(path: Path, fix: str) -> Any:
    """A file another stage hands on: named as missing with the command that writes it, then
    parsed by the project's one JSON reader."""
    if not path.is_file():
        raise DataError(f"{path} is missing: run `{fix}` first")
    return read_json(path)


def read_spec(task: str, name: str) -> tuple[Any, BaseModel]:
    """The kind and full params of model ``name`` (written by stage ``resolve@<task>``)."""
    from textrnn.catalog import get_kind

    path = paths.spec_path(task, name)
    spec = _read_json(path, f"dvc repro resolve@{task}")
    kind = get_kind(task, spec.get("kind", ""))
    try:
        return kind, kind.params.model_validate(spec["params"])
    except (KeyError, ValidationError) as exc:
        raise DataError(f"{path}: not a spec of kind {kind.name} ({exc}): run "
                        f"`dvc repro resolve@{task}`") from None


def read_tune_spec(task: str, name: str) -> ModelTuneParams | None:
    """How model ``name`` is tuned (None: not tuned), as stage ``resolve@<task>`` wrote it."""
    path = paths.tune_spec_path(task, name)
    spec = _read_json(path, f"dvc repro resolve@{task}")
    if spec.get("tune") is None:
        return None
    try:
        return ModelTuneParams.model_validate(spec["tune"])
    except ValidationError as exc:
        raise ParamsError(format_validation_error(exc, ModelTuneParams, str(path))) from None


def tuned_params(base: P, path: Path) -> tuple[P, bool, dict[str, tuple[Any, Any]]]:
    """``base`` with the ``params`` of best_params.json (written by tune) laid over it.

    Returns the params, whether they were tuned, and ``{key: (params.yaml value, tuned value)}``
    for every key the tuned value changed; without the file, ``base`` unchanged.
    """
    if not path.is_file():
        return base, False, {}
    try:
        best = json.loads(path.read_text(encoding="utf-8"))
        override, tuned = dict(best["params"]), bool(best["tuned"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: expected {{\"tuned\": bool, \"params\": {{...}}}} "
                        f"({exc})") from None
    try:
        merged = type(base).model_validate({**base.model_dump(), **override})
    except ValidationError as exc:  # name the file and the bad keys
        raise ParamsError(format_validation_error(exc, type(base), str(path))) from None
    changes = {key: (getattr(base, key), getattr(merged, key)) for key in override
               if getattr(base, key) != getattr(merged, key)}
    return merged, tuned, changes


def describe_changes(changes: dict[str, tuple[Any, Any]]) -> list[str]:
    """One line per tuned key: ``units: params.yaml 64 -> tuned 128``."""
    return [f"{key}: params.yaml {old!r} -> tuned {new!r}" for key, (old, new) in changes.items()]


def model_digest(directory: Path) -> str:
    """sha256 over the names and bytes of every file in a saved model's folder (short)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(directory).rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def write_trained_record(task: str, name: str, *, kind: str, model_dir: Path,
                         **fields: Any) -> None:
    """``metrics/trained/<task>/<name>.json``: which model train wrote, and its digest."""
    write_json(paths.trained_record_path(task, name), {
        "model": name, "kind": kind, "path": model_dir.as_posix(),
        "digest": model_digest(model_dir), **fields})


def trained_model_dir(task: str, name: str) -> Path:
    """The folder of trained model ``name``, checked against the record train left.

    Ensemble and evaluate depend on the records (``metrics/trained/<task>/``), not on the model
    folders (DVC cannot list a params-defined set of them): the digest check turns a model
    changed behind DVC's back into an error instead of a silently stale result.
    """
    path = paths.trained_record_path(task, name)
    record = _read_json(path, f"dvc repro train_{task}@{name}")
    directory = Path(record.get("path", ""))
    if not directory.is_dir():
        raise DataError(f"{directory} is missing (named by {path}): run "
                        f"`dvc repro train_{task}@{name}`")
    if model_digest(directory) != record.get("digest"):
        raise DataError(f"{directory} changed since train_{task}@{name} wrote {path}: run "
                        f"`dvc repro train_{task}@{name}` (or `dvc checkout`)")
    return directory


def write_history(path: Path, history: dict[str, list[float]], columns: Sequence[str]) -> None:
    """CSV for the DVC training-curve plots: ``epoch`` (1-based) then ``columns``, one row per
    epoch; only the header for models trained without epochs."""
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", *columns])
        for index in range(len(history.get("loss", []))):
            writer.writerow([index + 1] + [f"{history[c][index]:.6g}" for c in columns])


def read_history(task: str, name: str) -> dict[str, list[float]]:
    """``plots/<task>/history/<name>.csv`` as ``{column: values}``; {} for a model without
    epochs."""
    path = paths.history_path(task, name)
    if not path.is_file():
        raise DataError(f"{path} is missing: run `dvc repro train_{task}@{name}` first")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return {}
    return {column: [float(row[column]) for row in rows] for column in rows[0]}


def write_curves(path: Path, histories: dict[str, dict[str, list[float]]]) -> None:
    """Every model's history in one long CSV (``model``, ``epoch``, then the metrics), which
    dvc.yaml's training-curve plots draw one line per model: no plot lists the models."""
    columns = [c for c in dict.fromkeys(c for h in histories.values() for c in h) if c != "epoch"]
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "epoch", *columns])
        for name, history in histories.items():
            for index in range(len(history.get("epoch", []))):
                writer.writerow([name, int(history["epoch"][index])]
                                + [f"{history[c][index]:.6g}" if c in history else ""
                                   for c in columns])


def file_digest(*paths: str | Path) -> str:
    """sha256 over the bytes of ``paths`` (short): new data, new fingerprint."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:16]


SENTIMENT_COLUMNS = ("text", "label", "origin")


def sentiment_split(name: str, columns: Sequence[str] = SENTIMENT_COLUMNS):
    """``data/split/sentiment/<name>.parquet`` (train, val or test) as a DataFrame of
    ``columns``."""
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
