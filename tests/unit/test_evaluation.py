"""Evaluation metrics agree with scikit-learn; intervals, McNemar and diagnostics behave."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from textrnn.sentiment import evaluation


def fixture(n_classes: int, n: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, n_classes, size=n)
    logits = rng.normal(size=(n, n_classes)) + 1.5 * np.eye(n_classes)[y_true]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y_true, proba


def test_binary_metrics_equal_scikit_learn():
    y_true, proba = fixture(2)
    y_pred = proba.argmax(axis=1)
    got = evaluation.classification_metrics(y_true, proba)
    assert got == pytest.approx({
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "precision": skm.precision_score(y_true, y_pred),
        "recall": skm.recall_score(y_true, y_pred),
        "f1": skm.f1_score(y_true, y_pred),
        "kappa": skm.cohen_kappa_score(y_true, y_pred),
        "roc_auc": skm.roc_auc_score(y_true, proba[:, 1]),
        "log_loss": skm.log_loss(y_true, proba),
    })
    assert 0.6 < got["accuracy"] < 0.95   # the fixture is neither trivial nor hopeless


def test_multiclass_metrics_are_macro_and_one_vs_rest():
    y_true, proba = fixture(3)
    y_pred = proba.argmax(axis=1)
    got = evaluation.classification_metrics(y_true, proba)
    assert got["f1"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro"))
    assert got["precision"] == pytest.approx(skm.precision_score(y_true, y_pred, average="macro"))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y_true, proba, multi_class="ovr"))
    assert got["kappa"] == pytest.approx(skm.cohen_kappa_score(y_true, y_pred))
    assert got["log_loss"] == pytest.approx(skm.log_loss(y_true, proba))


@pytest.mark.parametrize("n_classes", [2, 3])
def test_confusion_scores_match_scikit_learn(n_classes):
    y_true, proba = fixture(n_classes, seed=5)
    y_pred = proba.argmax(axis=1)
    cm = evaluation.confusion_matrices(y_true, y_pred, n_classes)
    np.testing.assert_array_equal(cm[0], skm.confusion_matrix(y_true, y_pred))
    scores = evaluation._scores_from_confusion(cm)
    average = "binary" if n_classes == 2 else "macro"
    assert scores["f1"][0] == pytest.approx(skm.f1_score(y_true, y_pred, average=average))
    assert scores["kappa"][0] == pytest.approx(skm.cohen_kappa_score(y_true, y_pred))


def test_bootstrap_intervals_bracket_the_estimate_and_shrink_with_more_rows():
    y_true, proba = fixture(2, n=200)
    y_pred = proba.argmax(axis=1)
    ci = evaluation.bootstrap_intervals(y_true, y_pred, n_classes=2, samples=2000,
                                        confidence=0.95, seed=0)
    point = evaluation.classification_metrics(y_true, proba)
    for name in ("accuracy", "f1", "kappa"):
        low, high = ci[name]
        assert low < point[name] < high
    # binomial standard error of accuracy: the 95% interval is about +-1.96 * sqrt(p(1-p)/n)
    p = point["accuracy"]
    assert ci["accuracy"][1] - ci["accuracy"][0] == pytest.approx(
        2 * 1.96 * np.sqrt(p * (1 - p) / 200), rel=0.15)
    assert ci == evaluation.bootstrap_intervals(y_true, y_pred, n_classes=2, samples=2000,
                                                confidence=0.95, seed=0)  # seeded


def test_mcnemar_exact_p_value():
    y_true = np.zeros(30, dtype=int)
    pred_a = np.zeros(30, dtype=int)
    pred_b = np.zeros(30, dtype=int)
    pred_b[:10] = 1          # 10 rows only a gets right
    pred_a[10:12] = 1        # 2 rows only b gets right
    got = evaluation.mcnemar(y_true, pred_a, pred_b)
    expected = 2 * (1 + 12 + 66) / 2**12   # two-sided binomial, 2 of 12 discordant at 1/2
    assert got == {"a_only": 10, "b_only": 2, "p_value": pytest.approx(expected)}
    assert evaluation.mcnemar(y_true, pred_a, pred_a)["p_value"] == 1.0


def test_accuracy_by_group():
    got = evaluation.accuracy_by_group(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0]),
                                       ["imdb", "imdb", "yelp", "yelp"])
    assert got == {"imdb": 0.5, "yelp": 1.0}


def test_training_diagnostics():
    history = {"loss": [0.7, 0.5, 0.4, 0.3], "accuracy": [0.5, 0.7, 0.8, 0.95],
               "val_loss": [0.6, 0.5, 0.55, 0.52], "val_accuracy": [0.6, 0.75, 0.74, 0.75],
               "epoch_seconds": [2.0, 1.0, 1.0, 1.0]}
    got = evaluation.training_diagnostics(history)
    assert got == {"epochs": 4, "best_epoch": 2, "accuracy_gap": pytest.approx(0.2),
                   "val_loss_rises": 1, "seconds_per_epoch": 1.0}
    assert evaluation.training_diagnostics({}) == {}


def test_champion_is_best_on_validation_with_ties_to_lower_log_loss():
    scores = {"a": {"accuracy": 0.8, "log_loss": 0.5}, "b": {"accuracy": 0.85, "log_loss": 0.6},
              "c": {"accuracy": 0.85, "log_loss": 0.4}}
    assert evaluation.choose_champion(scores, "accuracy") == "c"
    assert evaluation.choose_champion(scores, "log_loss") == "c"
    assert evaluation.choose_champion({"a": scores["a"], "b": scores["b"]}, "log_loss") == "a"


def test_the_comparison_plot_fits_its_axis_to_the_models_not_to_zero(tmp_path):
    """0.81 and 0.86 must look apart: the axis spans the real models and their intervals; a
    dummy at 0.5 is left off the axis (written at its edge) instead of squashing the others."""
    from textrnn.sentiment import plots

    values = np.array([0.5, 0.81, 0.826, 0.84, 0.852, 0.86])
    bounds = np.column_stack([values - 0.02, values + 0.02])
    left, right = plots.fitted_axis(values, bounds)
    assert 0.75 < left < 0.79 and 0.88 <= right < 0.9
    scores = {f"m{i}": {"accuracy": v, "f1": v} for i, v in enumerate(values)}
    intervals = {f"m{i}": {"accuracy": tuple(b), "f1": tuple(b)} for i, b in enumerate(bounds)}
    plots.metric_intervals(scores, intervals, ["accuracy", "f1"], "test", tmp_path / "m.png",
                           champion="m5")
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"
