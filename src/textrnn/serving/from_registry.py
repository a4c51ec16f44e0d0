"""The service's models from the MLflow Model Registry (``textrnn serve --from-registry``): the
champion versions downloaded, then loaded like a models/ folder. Serving imports the registry
module; the registry, used by the train stages, never imports serving.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from textrnn import model_files
from textrnn.registry import download_champion, has_champion
from textrnn.serving.generator import load_generator
from textrnn.serving.loading import ModelInfo
from textrnn.serving.predictor import SentimentPredictor
from textrnn.tracking import probe_server


def champion_info(task: str, model_dir: Path, version: Any) -> Any:
    """The service's ModelInfo for a downloaded champion (meta.json plus the version's tags)."""
    meta = model_files.read_meta(model_dir, task=task, required=("task", "model"))
    tags = dict(getattr(version, "tags", {}) or {})
    value = tags.get("selected_value")
    return ModelInfo(
        task=task, name=meta.model, path=model_dir, dataset=meta.dataset,
        classes=tuple(meta.classes or ()) if task == "sentiment" else (),
        metrics=dict(meta.val_metrics or {}), git_commit=meta.git_commit,
        trained_at=meta.trained_at, mlflow_run_id=meta.mlflow_run_id,
        selected_on=tags.get("selected_on"), selected_value=float(value) if value else None)


def load_models(tracking_uri: str) -> tuple[Any, Any | None]:
    """The service's predictors from the registry at ``tracking_uri``: what
    :func:`textrnn.serving.load_models` gives from models/, i.e. the champion sentiment model
    (required) and the champion charlm model (None when the registry has none)."""
    if tracking_uri.startswith(("http://", "https://")):
        probe_server(tracking_uri)   # one line within seconds, not MLflow's minutes of retries
    with tempfile.TemporaryDirectory(prefix="textrnn-registry-") as tmp:
        # the predictors read everything into memory while loading: the files can go afterwards
        folder, version = download_champion("sentiment", Path(tmp) / "sentiment",
                                             tracking_uri=tracking_uri)
        sentiment = SentimentPredictor.load(champion_info("sentiment", folder, version))
        generator = None
        if has_champion("charlm", tracking_uri=tracking_uri):
            folder, version = download_champion("charlm", Path(tmp) / "charlm",
                                                tracking_uri=tracking_uri)
            generator = load_generator(champion_info("charlm", folder, version))
    return sentiment, generator
