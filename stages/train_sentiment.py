"""train_sentiment@<model>: fit one sentiment model on train, calibrate it and score it on val,
save it end to end.

-> models/sentiment/<model>/model/          model.keras (raw strings in) or model.skops, meta.json
-> metrics/trained/sentiment/<model>.json   val metrics, the model's digest (ensemble, evaluate)
-> plots/sentiment/history/<model>.csv      per-epoch loss, accuracy, val_loss, val_accuracy, lr
-> models/sentiment/<model>/train_state/    backup kept between runs: a killed run resumes
The temperature (temperature scaling, fitted on val) goes inside the saved model and into
meta.json's ``calibration`` with val NLL and ECE before and after it.
Reads models/specs/sentiment/<model>/model.json (resolve: kind and params),
models/sentiment/<model>/best_params.json (tune) when it exists, and models/embeddings/ (embed)
when the model starts from pretrained word vectors. Prints one line per tuned value.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from textrnn import paths, tracking
from textrnn.config import SentimentTrainParams, load_params
from textrnn.errors import ParamsError
from textrnn.handoff import (
    describe_changes,
    file_digest,
    read_spec,
    sentiment_split,
    tuned_params,
    write_history,
    write_trained_record,
)
from textrnn.io import atomic_dir, write_json
from textrnn.paths import SENTIMENT_SPLITS
from textrnn.sentiment.embeddings import for_model
from textrnn.stage import model_from_argv, run

HISTORY_COLUMNS = ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_seconds")


def main() -> None:
    params = load_params("seed", "data", "train", "tracking")
    train_params: SentimentTrainParams = params.train.sentiment
    name = model_from_argv(sys.argv, "train_sentiment", "sentiment", list(train_params.models))
    dataset = params.data.sentiment
    if dataset not in train_params.vectorizer:
        raise ParamsError(f"params.yaml: train.sentiment.vectorizer.{dataset} is missing")
    vectorizer = train_params.vectorizer[dataset]
    kind, yaml_params = read_spec("sentiment", name)
    model_params, tuned, changes = tuned_params(yaml_params,
                                                paths.best_params_path("sentiment", name))
    for line in describe_changes(changes):
        print(f"train_sentiment@{name}: {line}")
    key = f"train.sentiment.variants.{name}"
    train, val = sentiment_split("train"), sentiment_split("val")  # never test
    word_vectors = for_model(model_params, key)

    from textrnn.layers import describe_kernels, recurrent_kernels
    from textrnn.seeding import seed_everything
    from textrnn.sentiment.calibration import calibrate
    from textrnn.sentiment.evaluation import classification_metrics
    from textrnn.sentiment.models import encode_labels
    from textrnn.training import prepare_work_dir

    seed_everything(params.seed)
    model = kind.build(model_params, vectorizer=vectorizer, embeddings=word_vectors, key=key)
    run_params = {"model": name, "kind": kind.name, "dataset": dataset, "seed": params.seed,
                  "tuned": tuned, "params": model_params.model_dump(),
                  "vectorizer": vectorizer.model_dump()}
    work_dir = prepare_work_dir(paths.train_state_dir("sentiment", name), {
        **run_params, "data": file_digest(SENTIMENT_SPLITS / "train.parquet",
                                    SENTIMENT_SPLITS / "val.parquet"),
        "embeddings": word_vectors.digest if word_vectors else None,
        **({"language_model": digest}                                # kind lm_lstm
           if (digest := getattr(model, "source_digest", None)) else {})})

    tracking.configure(params.tracking.uri, params.tracking.experiment)
    import mlflow

    from textrnn import registry

    with tracking.start_run(run_name=f"sentiment/{name}", stage=f"train_sentiment@{name}",
                            params=run_params, dataset=dataset,
                            tags={"task": "sentiment", "model": name, "kind": kind.name}) as mlrun:
        tracking.log_splits(dataset, {"train": train, "validation": val}, targets="label",
                            source=SENTIMENT_SPLITS)
        history = model.fit(list(train.text), list(train.label), list(val.text), list(val.label),
                            seed=params.seed, work_dir=work_dir)
        kernels = describe_kernels(recurrent_kernels(getattr(model, "model", None)))
        mlflow.set_tag("recurrent_kernels", kernels)   # cudnn, fused BlockLSTM or keras loop
        y_val = encode_labels(list(val.label), model.classes, "val")
        fitted = calibrate(y_val, model.predict_proba(list(val.text)))
        model.set_temperature(fitted.temperature)     # kept inside the saved model
        val_metrics = classification_metrics(y_val, model.predict_proba(list(val.text)))
        mlflow.log_metrics({f"val/{k}": v for k, v in val_metrics.items()})
        # val/temperature, val/ece_before ...: sorted after val/accuracy in MLflow's views
        mlflow.log_metrics({f"val/{k.removeprefix('val_')}": v
                            for k, v in fitted.as_dict().items()})

        model_dir = paths.model_dir("sentiment", name)
        with atomic_dir(model_dir) as tmp:
            model.save(tmp)
            write_json(tmp / "meta.json", {
                "task": "sentiment", "model": name, "kind": kind.name, "classes": model.classes,
                "dataset": dataset,
                "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "git_commit": tracking.git_info()["git_commit"], "mlflow_run_id": mlrun.info.run_id,
                "val_metrics": val_metrics, "calibration": fitted.as_dict(), "tuned": tuned,
                "tuned_values": {k: {"params_yaml": old, "tuned": new}
                                 for k, (old, new) in changes.items()},
                "pretrained_embedding_coverage": getattr(model, "embedding_coverage", None),
            })
        write_history(paths.history_path("sentiment", name), history, HISTORY_COLUMNS)
        registry.log_model(model_dir)  # pyfunc + signature + input example -> textrnn-sentiment
        write_trained_record("sentiment", name, kind=kind.name, model_dir=model_dir,
                             mlflow_run_id=mlrun.info.run_id, val=val_metrics)
    print(f"train_sentiment@{name}: val accuracy {val_metrics['accuracy']:.4f} "
          f"({len(history.get('loss', []))} epochs; recurrent kernels: {kernels}), "
          f"temperature {fitted.temperature:.3f} "
          f"(val ECE {fitted.val_ece_before:.3f} -> {fitted.val_ece_after:.3f}) -> {model_dir}")


if __name__ == "__main__":
    run(main)
