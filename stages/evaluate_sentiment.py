"""evaluate_sentiment: score every trained sentiment model on the test split; pick the champion
on the validation split.

-> metrics/sentiment.json            test metrics keyed by model (intervals, McNemar, by origin,
                                     behavioural pass rates); the models of
                                     train.sentiment.models, and the ensemble
-> models/sentiment/champion.json    the model the service loads (chosen on val, never on test)
-> plots/sentiment/evaluate/         confusion matrices, ROC curves, metric bars, training curves
-> plots/sentiment/predictions/      <model>.csv: actual, predicted (DVC's confusion template)
-> plots/sentiment/curves.csv        every model's per-epoch history (column model), DVC plots
-> reports/sentiment.md              tables + images, readable on its own
Reads the trained models through their records (metrics/trained/sentiment/), the ensemble,
plots/sentiment/history/, and the behavioural test suite src/textrnn/sentiment/behaviour.yaml
(which no train or tune stage reads).
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from textrnn import paths, tracking
from textrnn.config import load_params
from textrnn.handoff import read_history, sentiment_split, trained_model_dir, write_curves
from textrnn.io import atomic_dir, atomic_path, write_json, write_text
from textrnn.stage import run

log = logging.getLogger(__name__)
PLOTS_DIR = Path("plots/sentiment/evaluate")
PREDICTIONS_DIR = Path("plots/sentiment/predictions")
REPORT = Path("reports/sentiment.md")
RELIABILITY = Path("plots/sentiment/reliability.csv")
INTERVAL_METRICS = ("accuracy", "f1", "kappa")    # the metrics evaluate gives intervals for


def main() -> None:
    params = load_params("seed", "data", "train", "evaluate", "tracking")
    settings = params.evaluate.sentiment
    trained = list(params.train.sentiment.models)
    # the ensemble (stage ensemble_sentiment) is scored like any model, and may be champion
    directories = {name: trained_model_dir("sentiment", name) for name in trained}
    if params.train.sentiment.ensemble.members:
        directories[paths.ENSEMBLE] = paths.model_dir("sentiment", paths.ENSEMBLE)
    names = list(directories)

    from textrnn.sentiment import behaviour, calibration, evaluation, plots
    from textrnn.sentiment import models as sentiment_models
    from textrnn.sentiment.reports import sentiment_markdown

    models = sentiment_models.load_all(directories)
    classes = models[names[0]].classes
    val, test = sentiment_split("val"), sentiment_split("test")
    y_val = sentiment_models.encode_labels(list(val.label), classes, "val")
    y_test = sentiment_models.encode_labels(list(test.label), classes, "test")

    val_scores = {n: evaluation.classification_metrics(y_val, m.predict_proba(list(val.text)))
                  for n, m in models.items()}
    champion = evaluation.choose_champion(val_scores, settings.select_on)
    proba = {n: m.predict_proba(list(test.text)) for n, m in models.items()}
    pred = {n: p.argmax(axis=1) for n, p in proba.items()}

    suite = behaviour.load_suite()
    checks = {n: behaviour.behaviour_check(m.predict_proba, classes, suite)
              for n, m in models.items()}
    if not behaviour.applies_to(classes):
        log.info("behavioural tests skipped: the suite is for classes negative / positive, "
                 "these models have %s", classes)

    results: dict[str, dict] = {}
    for name in names:
        entry = evaluation.classification_metrics(y_test, proba[name])
        entry["ci"] = evaluation.bootstrap_intervals(
            y_test, pred[name], n_classes=len(classes), samples=settings.bootstrap_samples,
            confidence=settings.confidence, seed=params.seed)
        if name != champion:
            paired = evaluation.mcnemar(y_test, pred[name], pred[champion])
            entry["mcnemar_vs_champion"] = {"p_value": paired["p_value"],
                                            "only_this_correct": paired["a_only"],
                                            "only_champion_correct": paired["b_only"]}
        entry["accuracy_by_origin"] = evaluation.accuracy_by_group(y_test, pred[name],
                                                                    list(test.origin))
        entry["val"] = val_scores[name]
        entry["calibration"] = calibration.calibration_metrics(
            y_test, proba[name], temperature_of(models[name]),
            samples=settings.bootstrap_samples, confidence=settings.confidence, seed=params.seed)
        if checks[name].rates:
            entry["behaviour"] = checks[name].metrics()
        results[name] = entry
    explained = _explain_champion(models[champion], classes, list(test.text), y_test,
                                  proba[champion])
    if explained.get("completeness"):
        results[champion]["attributions"] = explained["completeness"]
    all_histories = {name: read_history("sentiment", name) for name in trained}
    write_curves(paths.curves_path("sentiment"), all_histories)
    histories = {name: h for name, h in all_histories.items() if h}
    diagnostics = {name: evaluation.training_diagnostics(h) for name, h in histories.items()}

    reliability = {name: {
        "uncalibrated": calibration.reliability(
            y_test, calibration.rescale(proba[name], 1.0 / temperature_of(models[name]))),
        "calibrated": calibration.reliability(y_test, proba[name])} for name in names}
    images = _write_plots(plots, evaluation, results, proba, pred, y_test, classes, histories,
                          reliability, champion=champion, confidence=settings.confidence)
    _write_predictions(pred, y_test, classes)
    _write_reliability(reliability)
    # Each row of `dvc metrics show` leads to its MLflow run.
    write_json("metrics/sentiment.json", {
        n: {**r, "mlflow_run_id": models[n].meta.get("mlflow_run_id")} for n, r in results.items()})
    write_json(paths.champion_path("sentiment"), {
        "model": champion, "selected_on": f"val_{settings.select_on}",
        "value": val_scores[champion][settings.select_on]})
    write_text(REPORT, sentiment_markdown(
        dataset=params.data.sentiment, results=results, champion=champion,
        select_on=settings.select_on, confidence=settings.confidence, n_test=len(test),
        diagnostics=diagnostics, classes=classes,
        ensemble_members=params.train.sentiment.ensemble.members,
        behaviour_failures=checks[champion].failures, behaviour_counts=checks[champion].counts,
        mistakes=explained.get("mistakes"), explain_note=explained.get("note"),
        explain_seconds=explained.get("seconds_per_sentence"),
        images={caption: f"../{path}" for caption, path in images.items()}))
    _log_to_mlflow(params.tracking, models, results, images)
    from textrnn import registry

    registry.set_champion("sentiment", models[champion].meta.get("mlflow_run_id"),
                          selected_on=f"val_{settings.select_on}",
                          value=val_scores[champion][settings.select_on])
    print(f"evaluate_sentiment: champion {champion} (val {settings.select_on} "
          f"{val_scores[champion][settings.select_on]:.4f}); test accuracy "
          + ", ".join(f"{n} {r['accuracy']:.4f}" for n, r in results.items()))


def _write_plots(plots, evaluation, results, proba, pred, y_test, classes, histories,
                 reliability, *, champion, confidence):
    """PNG files into plots/sentiment/evaluate/; returns {caption: path}."""
    from sklearn.metrics import roc_curve

    images: dict[str, str] = {}
    with atomic_dir(PLOTS_DIR) as tmp:
        positive = len(classes) - 1  # binary: class index 1; else micro-averaged one-vs-rest
        curves = {}
        for name, p in proba.items():
            if len(classes) == 2:
                fpr, tpr, _ = roc_curve(y_test, p[:, positive])
            else:
                onehot = np.eye(len(classes))[y_test]
                fpr, tpr, _ = roc_curve(onehot.ravel(), p.ravel())
            curves[name] = (fpr, tpr, results[name]["roc_auc"])
        plots.roc_curves(curves, "ROC curves (test)", tmp / "roc.png")
        images["ROC curves (test)"] = f"{PLOTS_DIR}/roc.png"
        plots.metric_intervals({n: r for n, r in results.items()},
                               {n: r["ci"] for n, r in results.items()}, INTERVAL_METRICS,
                               f"Test metrics, {confidence:.0%} bootstrap intervals",
                               tmp / "metrics.png", champion=champion)
        images["Test metrics with intervals"] = f"{PLOTS_DIR}/metrics.png"
        plots.reliability_diagrams(reliability, {n: r["calibration"] for n, r in results.items()},
                                   tmp / "reliability.png")
        images["Reliability diagrams (test)"] = f"{PLOTS_DIR}/reliability.png"
        if histories:
            plots.training_curves(histories, tmp / "training_curves.png")
            images["Training curves"] = f"{PLOTS_DIR}/training_curves.png"
        for name in results:
            cm = evaluation.confusion_matrices(y_test, pred[name], len(classes))[0]
            plots.confusion_matrix(cm, classes, f"{name} (test)", tmp / f"confusion_{name}.png")
            images[f"Confusion matrix: {name}"] = f"{PLOTS_DIR}/confusion_{name}.png"
    return images


MISTAKES_SHOWN = 5          # the champion's most confident test mistakes, with attributions
COMPLETENESS_ROWS = 100     # test sentences whose attributions are checked for completeness


def _explain_champion(model, classes, texts, y_test, proba) -> dict:
    """The champion's most confident mistakes on test with word attributions, and the
    completeness of its attributions on the first test sentences (integrated gradients:
    :mod:`textrnn.sentiment.explain`). A model that cannot be explained gets a note instead."""
    import time

    from textrnn.errors import UserError
    from textrnn.sentiment import explain

    if model.keras_model is None:
        return {"note": "the champion is a scikit-learn model: word attributions are computed "
                        "for the neural models only"}
    try:
        explainer = explain.Explainer(model.keras_model, classes)
    except UserError as exc:
        return {"note": str(exc)}
    predicted = proba.argmax(axis=1)
    wrong = np.flatnonzero(predicted != y_test)
    order = wrong[np.argsort(-proba[wrong].max(axis=1), kind="stable")][:MISTAKES_SHOWN]
    mistakes = []
    for row, why in zip(order, explainer([texts[i] for i in order]), strict=True):
        mistakes.append({"text": texts[row], "actual": classes[y_test[row]],
                         "predicted": why.label, "probability": float(proba[row].max()),
                         "tokens": why.tokens, "scores": why.scores})
    started = time.perf_counter()
    checked = explainer(texts[:COMPLETENESS_ROWS])
    seconds = time.perf_counter() - started
    gaps = np.abs([e.completeness_gap for e in checked if e.tokens])
    completeness = {
        "sentences": len(gaps), "tolerance": explain.COMPLETENESS_TOLERANCE,
        "steps": explain.DEFAULT_STEPS, "max_gap": float(gaps.max()) if len(gaps) else 0.0,
        "within_tolerance": float(np.mean(gaps <= explain.COMPLETENESS_TOLERANCE))
        if len(gaps) else 1.0}
    # the time goes to the report only: metrics/sentiment.json stays identical between reruns
    return {"mistakes": mistakes, "completeness": completeness,
            "seconds_per_sentence": seconds / max(len(checked), 1)}


def temperature_of(model) -> float:
    """The temperature inside a saved model (meta.json's calibration; 1.0 when it has none)."""
    return float((model.meta.get("calibration") or {}).get("temperature", 1.0))


def _write_reliability(reliability) -> None:
    """plots/sentiment/reliability.csv: per model, the reliability diagram's points with and
    without its temperature (DVC's ``reliability`` template draws them)."""
    with atomic_path(RELIABILITY) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "probabilities", "confidence", "accuracy", "count"])
        for name, by_kind in reliability.items():
            for label, rows in by_kind.items():
                writer.writerows([name, label, f"{row['confidence']:.6f}",
                                  f"{row['accuracy']:.6f}", row["count"]] for row in rows)


def _write_predictions(pred, y_test, classes) -> None:
    with atomic_dir(PREDICTIONS_DIR) as tmp:
        for name, p in pred.items():
            with (tmp / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["actual", "predicted"])
                writer.writerows([classes[a], classes[b]] for a, b in zip(y_test, p, strict=True))


def _log_to_mlflow(tracking_params, models, results, images) -> None:
    """Add test metrics and plots to each model's training run (its id is in meta.json)."""
    tracking.configure(tracking_params.uri, tracking_params.experiment)
    import mlflow

    for name, model in models.items():
        run_id = model.meta.get("mlflow_run_id")
        try:
            mlflow.get_run(run_id)
        except Exception:  # noqa: BLE001 (missing or foreign run: nothing to add to)
            log.warning("MLflow run %s of %s not found in %s; test metrics not logged there",
                        run_id, name, tracking_params.uri)
            continue
        entry = results[name]
        with mlflow.start_run(run_id=run_id):
            scalars = {k: v for k, v in entry.items() if isinstance(v, float)}
            mlflow.log_metrics({f"test/{k}": v for k, v in scalars.items()})
            mlflow.log_metrics({f"test/{k}_ci_{side}": bound for k, (lo, hi) in entry["ci"].items()
                                for side, bound in (("low", lo), ("high", hi))})
            mlflow.set_tag("evaluated_by", "evaluate_sentiment")
            for caption, path in images.items():
                if "Confusion" not in caption or caption.endswith(f": {name}"):
                    mlflow.log_artifact(path, artifact_path="plots")


if __name__ == "__main__":
    run(main)
