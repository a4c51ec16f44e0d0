"""train_sentiment@<model>: fit one sentiment model on train, score it on val, save it end to end.

-> models/sentiment/<model>/model/          model.keras (raw strings in) or model.skops, meta.json
-> plots/sentiment/history/<model>.csv      per-epoch loss, accuracy, val_loss, val_accuracy, lr
-> models/sentiment/<model>/train_state/    backup kept between runs: a killed run resumes
Reads models/sentiment/<model>/best_params.json (written by tune) when it exists.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from textrnn import tracking
from pydantic import ValidationError

from textrnn.config import SentimentTrainParams, format_validation_error, load_params
from textrnn.errors import DataError, ParamsError, UserError
from textrnn.io import atomic_dir, atomic_path, write_json
from textrnn.stage import run

SPLIT_DIR = Path("data/split/sentiment")
HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_seconds")


def read_split(name: str) -> pd.DataFrame:
    path = SPLIT_DIR / f"{name}.parquet"
    if not path.is_file():
        raise DataError(f"{path} is missing: run `dvc repro split@sentiment` first")
    table = pd.read_parquet(path)
    missing = {"text", "label", "origin"} - set(table.columns)
    if missing:
        raise DataError(f"{path} lacks column(s) {sorted(missing)}")
    return table


def tuned_params(base, path: Path):
    """``base`` with the ``params`` of best_params.json (written by tune) laid over it."""
    if not path.is_file():
        return base, False
    try:
        best = json.loads(path.read_text(encoding="utf-8"))
        override = best["params"]
        tuned = bool(best["tuned"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: expected {{\"tuned\": bool, \"params\": {{...}}}} ({exc})") from None
    try:
        return type(base).model_validate({**base.model_dump(), **override}), tuned
    except ValidationError as exc:  # name the file and the bad keys
        raise ParamsError(format_validation_error(exc, type(base), str(path))) from None


def file_digest(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def write_history(path: Path, history: dict[str, list[float]]) -> None:
    """CSV, one row per epoch (1-based); header only for models trained without epochs."""
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HISTORY_COLUMNS)
        for index in range(len(history.get("loss", []))):
            writer.writerow([index + 1] + [f"{history[c][index]:.6g}" for c in HISTORY_COLUMNS[1:]])


def model_from_argv(argv: list[str], known: list[str]) -> str:
    if len(argv) != 2 or argv[1] not in known:
        got = " ".join(argv[1:]) or "nothing"
        raise UserError(f"usage: python -m stages.train_sentiment {{{'|'.join(known)}}} "
                        f"(the models of train.sentiment.models; got {got})")
    return argv[1]


def main() -> None:
    params = load_params("seed", "data", "train", "tracking")
    train_params: SentimentTrainParams = params.train.sentiment
    name = model_from_argv(sys.argv, list(train_params.models))
    dataset = params.data.sentiment
    if dataset not in train_params.vectorizer:
        raise ParamsError(f"params.yaml: train.sentiment.vectorizer.{dataset} is missing")
    vectorizer = train_params.vectorizer[dataset]
    model_params, tuned = tuned_params(getattr(train_params, name),
                                       Path(f"models/sentiment/{name}/best_params.json"))
    train, val = read_split("train"), read_split("val")  # never test

    from textrnn.evaluation import classification_metrics
    from textrnn.models import get_builder
    from textrnn.models.sentiment import encode_labels
    from textrnn.seeding import seed_everything
    from textrnn.training import prepare_work_dir

    seed_everything(params.seed)
    model = get_builder("sentiment", name)(model_params, vectorizer=vectorizer)
    run_params = {"model": name, "dataset": dataset, "seed": params.seed, "tuned": tuned,
                  "params": model_params.model_dump(), "vectorizer": vectorizer.model_dump()}
    work_dir = prepare_work_dir(Path(f"models/sentiment/{name}/train_state"), {
        **run_params, "data": file_digest(SPLIT_DIR / "train.parquet", SPLIT_DIR / "val.parquet")})

    tracking.configure(params.tracking.uri, params.tracking.experiment)
    import mlflow

    from textrnn import registry

    with tracking.start_run(run_name=f"sentiment/{name}", stage=f"train_sentiment@{name}",
                            params=run_params, tags={"task": "sentiment", "model": name}) as mlrun:
        history = model.fit(list(train.text), list(train.label), list(val.text), list(val.label),
                            seed=params.seed, work_dir=work_dir)
        val_proba = model.predict_proba(list(val.text))
        val_metrics = classification_metrics(encode_labels(list(val.label), model.classes, "val"),
                                             val_proba)
        for epoch in range(len(history.get("loss", []))):
            mlflow.log_metrics({k: history[k][epoch] for k in HISTORY_COLUMNS[1:]}, step=epoch + 1)
        mlflow.log_metrics({f"val/{k}": v for k, v in val_metrics.items()})

        model_dir = Path(f"models/sentiment/{name}/model")
        with atomic_dir(model_dir) as tmp:
            model.save(tmp)
            write_json(tmp / "meta.json", {
                "task": "sentiment", "model": name, "classes": model.classes, "dataset": dataset,
                "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "git_commit": tracking.git_info()["git_commit"], "mlflow_run_id": mlrun.info.run_id,
                "val_metrics": val_metrics, "tuned": tuned,
            })
        write_history(Path(f"plots/sentiment/history/{name}.csv"), history)
        registry.log_model(model_dir)  # pyfunc + signature + input example -> textrnn-sentiment
    print(f"train_sentiment@{name}: val accuracy {val_metrics['accuracy']:.4f} "
          f"({len(history.get('loss', []))} epochs) -> {model_dir}")


if __name__ == "__main__":
    run(main)
