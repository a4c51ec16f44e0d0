"""ensemble_sentiment: one model that averages the class probabilities of trained neural models.

-> models/sentiment/ensemble/model/    model.keras (raw strings in, like every neural model;
                                       ends in a temperature fitted on val) and meta.json;
                                       with train.sentiment.ensemble.members [] only
                                       meta.json, and evaluate leaves the ensemble out
Nothing is trained: the members are read from models/sentiment/<member>/model/, as their records
in metrics/trained/sentiment/ (the stage's dependency) name them. Averaging
models that make different mistakes cuts the variance of any one of them; evaluate scores the
ensemble like any model and may choose it as champion (on val, never on test).
"""

from __future__ import annotations

from datetime import UTC, datetime

from textrnn import paths, tracking
from textrnn.config import load_params
from textrnn.handoff import sentiment_split, trained_model_dir
from textrnn.io import atomic_dir, write_json
from textrnn.stage import run

MODEL_DIR = paths.model_dir("sentiment", paths.ENSEMBLE)


def main() -> None:
    params = load_params("seed", "data", "train", "tracking")
    members = list(params.train.sentiment.ensemble.members)
    dataset = params.data.sentiment
    if not members:
        with atomic_dir(MODEL_DIR) as tmp:
            write_json(tmp / "meta.json", {"task": "sentiment", "model": "ensemble",
                                           "members": [], "dataset": dataset})
        print("ensemble_sentiment: train.sentiment.ensemble.members is [], no ensemble")
        return

    from textrnn.sentiment import models as sentiment_models
    from textrnn.sentiment.calibration import calibrate
    from textrnn.sentiment.evaluation import classification_metrics

    loaded = sentiment_models.load_all({m: trained_model_dir("sentiment", m) for m in members})
    classes = loaded[members[0]].classes
    model = sentiment_models.ensemble({name: m.keras_model for name, m in loaded.items()})
    val = sentiment_split("val")  # never test
    y_val = sentiment_models.encode_labels(list(val.label), classes, "val")
    # the mean of calibrated members is not calibrated itself: a temperature of its own
    fitted = calibrate(y_val, sentiment_models.predict_keras(model, list(val.text)))
    model = sentiment_models.with_temperature(model, fitted.temperature)
    val_metrics = classification_metrics(y_val, sentiment_models.predict_keras(model,
                                                                                list(val.text)))

    tracking.configure(params.tracking.uri, params.tracking.experiment)
    import mlflow

    from textrnn import registry

    run_params = {"model": "ensemble", "dataset": dataset, "members": members,
                  "member_runs": {n: m.meta.get("mlflow_run_id") for n, m in loaded.items()}}
    with tracking.start_run(run_name="sentiment/ensemble", stage="ensemble_sentiment",
                            params=run_params, dataset=dataset,
                            tags={"task": "sentiment", "model": "ensemble"}) as mlrun:
        tracking.log_splits(dataset, {"validation": val}, targets="label",
                            source=paths.SENTIMENT_SPLITS)
        mlflow.log_metrics({f"val/{k}": v for k, v in val_metrics.items()})
        # val/temperature, val/ece_before ...: sorted after val/accuracy in MLflow's views
        mlflow.log_metrics({f"val/{k.removeprefix('val_')}": v
                            for k, v in fitted.as_dict().items()})
        with atomic_dir(MODEL_DIR) as tmp:
            model.save(tmp / sentiment_models.KERAS_FILE)
            write_json(tmp / "meta.json", {
                "task": "sentiment", "model": "ensemble", "members": members,
                "classes": classes, "dataset": dataset,
                "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "git_commit": tracking.git_info()["git_commit"],
                "mlflow_run_id": mlrun.info.run_id, "val_metrics": val_metrics,
                "calibration": fitted.as_dict(),
                "member_val_accuracy": {n: m.meta.get("val_metrics", {}).get("accuracy")
                                        for n, m in loaded.items()},
            })
        registry.log_model(MODEL_DIR)
    print(f"ensemble_sentiment: mean of {', '.join(members)}: val accuracy "
          f"{val_metrics['accuracy']:.4f} -> {MODEL_DIR}")


if __name__ == "__main__":
    run(main)
