"""tune_sentiment@<model>: search the model's hyperparameters on the validation split.

-> models/sentiment/<model>/best_params.json (read by train_sentiment@<model>)
-> plots/tune/sentiment/<model>/ (trials table, intermediate values, importances, three plots)

``python -m stages.tune_sentiment lstm --worker`` joins the same study from another process or
machine (tune.storage must then be a PostgreSQL URL all of them reach) and writes nothing.
"""

from __future__ import annotations

from textrnn import paths
from textrnn.config import load_params
from textrnn.errors import UserError
from textrnn.handoff import file_digest, read_spec, read_tune_spec, sentiment_split
from textrnn.paths import SENTIMENT_SPLITS
from textrnn.stage import run
from textrnn.tuning.runner import TuneJob, searched_values, tune, worker_args


def main() -> None:
    args = worker_args("sentiment")
    params = load_params("seed", "data", "train", "tune", "tracking")
    train, tune_params = params.train.sentiment, params.tune.sentiment
    dataset = params.data.sentiment
    if args.model not in train.models:
        raise UserError(f"{args.model!r} is not in train.sentiment.models "
                        f"({', '.join(train.models)})")
    kind, base = read_spec("sentiment", args.model)
    # TensorFlow loads with the objective: only once params and model name are known good.
    from textrnn.sentiment.embeddings import for_model
    from textrnn.tuning.objectives import SentimentData, SentimentObjective
    splits = {name: sentiment_split(name, ["text", "label"])
              for name in ("train", "val")}  # never test
    vectors = for_model(base, f"train.sentiment.variants.{args.model}")
    job = TuneJob(
        task="sentiment", model=args.model, settings=read_tune_spec("sentiment", args.model),
        base=base, metric="val_accuracy", direction="maximize",
        seed=params.seed, storage=params.tune.storage, heartbeat_s=params.tune.heartbeat_s,
        dataset=dataset,
        context={"data": file_digest(SENTIMENT_SPLITS / "train.parquet",
                                     SENTIMENT_SPLITS / "val.parquet"),
                 "embeddings": vectors.digest if vectors else None,
                 "vectorizer": train.vectorizer[dataset].model_dump(),
                 "cv_folds": tune_params.cv_folds},
    )
    objective = SentimentObjective(
        model=args.model, kind=kind, base=job.base, vectorizer=train.vectorizer[dataset],
        data=SentimentData(list(splits["train"].text), list(splits["train"].label),
                           list(splits["val"].text), list(splits["val"].label)),
        seed=params.seed, fixed=job.settings.fixed if job.enabled else {},
        cv_folds=tune_params.cv_folds, key=job.key, embeddings=vectors,
    )
    tune(job, objective, tracking_params=params.tracking,
         max_epochs=objective.max_epochs(searched_values(job.settings, "epochs")),
         best_params_path=None if args.worker else paths.best_params_path("sentiment", args.model),
         plots_dir=None if args.worker else paths.tune_plots_dir("sentiment", args.model))


if __name__ == "__main__":
    run(main)
