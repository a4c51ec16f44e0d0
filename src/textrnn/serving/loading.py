"""Find the champion of a task under models/ and read its meta.json (see docs/CONTRACTS.md; the
schema and the loader of both files: :mod:`textrnn.model_files`).

Everything here runs once, at start-up; a missing or malformed file is a :class:`UserError` whose
one-line message names the file, so the service never starts half-loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textrnn import model_files


@dataclass(frozen=True)
class ModelInfo:
    """What /v1/models tells about a loaded model: its meta.json and why it was chosen."""

    task: str
    name: str
    path: Path                              # models/<task>/<name>/model
    dataset: str | None = None
    classes: tuple[str, ...] = ()
    metrics: dict[str, Any] = field(default_factory=dict)   # meta.json val_metrics
    git_commit: str | None = None
    trained_at: str | None = None
    mlflow_run_id: str | None = None
    selected_on: str | None = None          # champion.json: the validation metric it won on
    selected_value: float | None = None


def champion_path(models_dir: Path, task: str) -> Path:
    return model_files.champion_path(models_dir, task)


def find_champion(models_dir: Path, task: str) -> ModelInfo:
    """Read models/<task>/champion.json and the chosen model's meta.json (both through
    :mod:`textrnn.model_files`)."""
    champion = model_files.read_champion(models_dir, task)
    model_dir = Path(models_dir) / task / champion.model / "model"
    meta = model_files.read_meta(model_dir, task=task)
    return ModelInfo(
        task=task,
        name=champion.model,
        path=model_dir,
        dataset=meta.dataset,
        classes=tuple(meta.classes or ()) if task == "sentiment" else (),
        metrics=dict(meta.val_metrics or {}),
        git_commit=meta.git_commit,
        trained_at=meta.trained_at,
        mlflow_run_id=meta.mlflow_run_id,
        selected_on=champion.selected_on,
        selected_value=champion.value,
    )
