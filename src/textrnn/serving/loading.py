"""Find the champion of a task under models/ and read its meta.json (see docs/CONTRACTS.md).

Everything here runs once, at start-up; a missing or malformed file is a :class:`UserError` whose
one-line message names the file, so the service never starts half-loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textrnn.errors import UserError

TASKS = ("sentiment", "charlm")


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


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: unreadable ({' '.join(str(exc).split())})") from None


def champion_path(models_dir: Path, task: str) -> Path:
    return Path(models_dir) / task / "champion.json"


def find_champion(models_dir: Path, task: str) -> ModelInfo:
    """Read models/<task>/champion.json and the chosen model's meta.json."""
    path = champion_path(models_dir, task)
    if not path.exists():
        raise UserError(
            f"{path}: no champion {task} model (train and evaluate first: `make repro`, "
            "or point --models-dir at a folder that holds one)"
        )
    champion = read_json(path)
    name = champion.get("model") if isinstance(champion, dict) else None
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise UserError(f"{path}: expected {{\"model\": \"<name>\", ...}}, got {champion!r:.200}")
    model_dir = Path(models_dir) / task / name / "model"
    meta_path = model_dir / "meta.json"
    meta = read_json(meta_path)
    if not isinstance(meta, dict):
        raise UserError(f"{meta_path}: expected a JSON object")
    if meta.get("task", task) != task:
        raise UserError(f"{meta_path}: task is {meta.get('task')!r}, expected {task!r}")
    classes = meta.get("classes", [])
    if task == "sentiment" and not (
        isinstance(classes, list)
        and len(classes) >= 2
        and all(isinstance(c, str) for c in classes)
        and len(set(classes)) == len(classes)
    ):
        raise UserError(f"{meta_path}: 'classes' must list at least two distinct class names")
    metrics = meta.get("val_metrics") or {}
    value = champion.get("value")
    return ModelInfo(
        task=task,
        name=name,
        path=model_dir,
        dataset=_optional_str(meta.get("dataset")),
        classes=tuple(classes) if task == "sentiment" else (),
        metrics=metrics if isinstance(metrics, dict) else {},
        git_commit=_optional_str(meta.get("git_commit")),
        trained_at=_optional_str(meta.get("trained_at")),
        mlflow_run_id=_optional_str(meta.get("mlflow_run_id")),
        selected_on=_optional_str(champion.get("selected_on")),
        selected_value=float(value) if isinstance(value, int | float) else None,
    )


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)
