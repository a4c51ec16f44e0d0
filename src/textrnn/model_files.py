"""The two files that describe a trained model, as one schema and one loader each
(docs/CONTRACTS.md, "Models"):

- ``models/<task>/<name>/model/meta.json`` (written by ``train_<task>`` and
  ``ensemble_sentiment``): :class:`ModelMeta`, read by :func:`read_meta`;
- ``models/<task>/champion.json`` (written by ``evaluate_<task>``): :class:`Champion`, read by
  :func:`read_champion`.

Every reader (the service, the registry, the model loaders, ``make report``) goes through these,
so one problem gives one message: a :class:`DataError` of one line that names the file and the
problem. meta.json grows fields over time, so unknown keys are kept, not refused; the keys below
are checked when present. TensorFlow-free.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, model_validator

from textrnn.errors import DataError
from textrnn.stage import TASKS

META_FILE = "meta.json"
CHAMPION_FILE = "champion.json"
CLASSES_PROBLEM = "'classes' must list at least two distinct class names"


class ModelMeta(BaseModel):
    """``meta.json`` of a saved model. Every key is optional (some writers leave some out: the
    empty ensemble writes only ``task``, ``model``, ``members`` and ``dataset``) and unknown keys
    are kept (``tuned_values``, ``epochs``, ...; :meth:`as_dict` gives them back).

    A sentiment model (``task`` is ``sentiment``, or the task the reader asked for is) must list at
    least two distinct ``classes``, in the order of its output columns; only the empty ensemble
    (``"members": []``) has none.
    """

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    task: Literal["sentiment", "charlm"] | None = None
    model: str | None = None
    kind: str | None = None
    classes: list[str] | None = None
    dataset: str | None = None
    trained_at: str | None = None           # ISO 8601, UTC
    git_commit: str | None = None
    mlflow_run_id: str | None = None
    val_metrics: dict[str, Any] | None = None
    tuned: bool | None = None
    tuned_values: dict[str, Any] | None = None
    pretrained_embedding_coverage: float | None = None
    members: list[str] | None = None        # the ensemble's member models
    member_val_accuracy: dict[str, float | None] | None = None
    vocab_size: int | None = None           # charlm
    sequence_length: int | None = None      # charlm

    @model_validator(mode="before")
    @classmethod
    def _task_and_classes(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        wanted = (info.context or {}).get("task")
        found = data.get("task", wanted)
        if wanted is not None and found != wanted:
            raise ValueError(f"task is {found!r}, expected {wanted!r}")
        if found is not None and found not in TASKS:
            raise ValueError(f"task is {found!r}, expected one of {', '.join(map(repr, TASKS))}")
        classes = data.get("classes", [])
        if found == "sentiment" and data.get("members") != [] and not (
            isinstance(classes, list)
            and len(classes) >= 2
            and all(isinstance(c, str) for c in classes)
            and len(set(classes)) == len(classes)
        ):
            raise ValueError(CLASSES_PROBLEM)
        return data

    def as_dict(self) -> dict[str, Any]:
        """The keys the file holds (unknown ones included), as validated."""
        return self.model_dump(mode="json", exclude_unset=True)


class Champion(BaseModel):
    """``champion.json`` of a task: the chosen model's folder name under ``models/<task>/``, the
    validation metric it was chosen on and its value. Unknown keys are kept."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    model: str
    selected_on: str | None = None
    value: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _plain_folder_name(cls, data: Any) -> Any:
        name = data.get("model") if isinstance(data, dict) else None
        if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
            raise ValueError(f"expected {{\"model\": \"<name>\", ...}}, got {data!r:.200}")
        return data


def read_json(path: Path, *, fix: str | None = None) -> Any:
    """The parsed JSON of ``path``; a missing or unreadable file is a one-line DataError
    (``fix``: the command that writes the file, named when it is missing)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        hint = f" (run `{fix}` first)" if fix else ""
        raise DataError(f"{path}: file not found{hint}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{path}: unreadable ({' '.join(str(exc).split())})") from None


def meta_from(data: Any, source: str | Path, *, task: str | None = None,
              required: tuple[str, ...] = ()) -> ModelMeta:
    """Validate parsed meta.json ``data`` (``task``: the task the reader expects; ``required``:
    keys that must be there); errors name ``source``."""
    try:
        meta = ModelMeta.model_validate(data, context={"task": task})
    except ValidationError as exc:
        raise DataError(_one_line(exc, source)) from None
    missing = [key for key in required if getattr(meta, key, None) is None]
    if missing:
        keys = " and ".join(repr(key) for key in required)
        raise DataError(f"{source}: expected a JSON object with {keys} (docs/CONTRACTS.md)")
    return meta


def read_meta(model_dir: str | Path, *, task: str | None = None,
              required: tuple[str, ...] = ()) -> ModelMeta:
    """``meta.json`` of the saved model in ``model_dir``, validated (see :func:`meta_from`)."""
    path = Path(model_dir) / META_FILE
    data = read_json(path, fix=f"dvc repro train_{task}" if task else None)
    return meta_from(data, path, task=task, required=required)


def champion_path(models_dir: str | Path, task: str) -> Path:
    return Path(models_dir) / task / CHAMPION_FILE


def champion_from(data: Any, source: str | Path) -> Champion:
    """Validate parsed champion.json ``data``; errors name ``source``."""
    try:
        return Champion.model_validate(data)
    except ValidationError as exc:
        raise DataError(_one_line(exc, source)) from None


def read_champion(models_dir: str | Path, task: str) -> Champion:
    """``models/<task>/champion.json`` under ``models_dir``, validated."""
    path = champion_path(models_dir, task)
    if not path.exists():
        raise DataError(
            f"{path}: no champion {task} model (train and evaluate first: `make repro`, "
            "or point --models-dir at a folder that holds one)"
        )
    return champion_from(read_json(path), path)


def _one_line(exc: ValidationError, source: str | Path) -> str:
    parts = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if not key:
            parts.append(msg)                    # a rule of the file as a whole (the validators)
        elif err["type"] == "missing":
            parts.append(f"{key} is missing")
        else:
            parts.append(f"{key} = {err['input']!r:.100} is invalid: {msg}")
    return f"{source}: " + "; ".join(parts)
