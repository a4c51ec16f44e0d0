"""Classification metrics, bootstrap confidence intervals, McNemar's test, training diagnostics.

Pure functions on arrays: ``y_true`` holds class indices (n,), ``proba`` probabilities
(n, n_classes) in class order. With two classes, precision / recall / F1 are those of class
index 1 (``positive`` for the built-in datasets) and ROC AUC scores its probability; with more,
they are macro averages and ROC AUC is one-vs-rest (macro).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sklearn import metrics as skm


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """accuracy, precision, recall, f1, kappa, roc_auc, log_loss of ``proba`` against ``y_true``."""
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype="float64")
    if proba.ndim != 2 or len(proba) != len(y_true):
        raise ValueError(f"proba must be (n, n_classes) with n = {len(y_true)}, got {proba.shape}")
    n_classes = proba.shape[1]
    labels = np.arange(n_classes)
    y_pred = proba.argmax(axis=1)
    binary = n_classes == 2
    average = "binary" if binary else "macro"
    prf = skm.precision_recall_fscore_support(y_true, y_pred, labels=None if binary else labels,
                                              average=average, zero_division=0)
    present = np.unique(y_true)
    if len(present) < 2:
        roc_auc = float("nan")  # undefined with one class in y_true
    elif binary:
        roc_auc = skm.roc_auc_score(y_true, proba[:, 1])
    else:
        roc_auc = skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro",
                                    labels=labels)
    return {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "precision": float(prf[0]),
        "recall": float(prf[1]),
        "f1": float(prf[2]),
        "kappa": float(skm.cohen_kappa_score(y_true, y_pred, labels=labels)),
        "roc_auc": float(roc_auc),
        # float32 softmax rows sum to 1 only within ~1e-7: renormalise in float64 for log loss
        "log_loss": float(skm.log_loss(y_true, _normalised(proba), labels=labels)),
    }


def _normalised(proba: np.ndarray) -> np.ndarray:
    proba = np.clip(proba, 1e-15, 1.0)
    return proba / proba.sum(axis=1, keepdims=True)


def _scores_from_confusion(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, F1 (binary: class 1; else macro) and kappa from confusion matrices (B, k, k)."""
    total = cm.sum(axis=(1, 2)).astype("float64")
    diag = np.diagonal(cm, axis1=1, axis2=2).astype("float64")      # (B, k) true positives
    true_counts = cm.sum(axis=2).astype("float64")                     # (B, k) rows = truth
    pred_counts = cm.sum(axis=1).astype("float64")                     # (B, k) columns = predicted
    accuracy = diag.sum(axis=1) / total
    with np.errstate(divide="ignore", invalid="ignore"):
        f1_per_class = np.nan_to_num(2 * diag / (true_counts + pred_counts))
        expected = (true_counts * pred_counts).sum(axis=1) / total**2
        kappa = np.where(expected < 1, (accuracy - expected) / (1 - expected), 0.0)
    f1 = f1_per_class[:, 1] if cm.shape[1] == 2 else f1_per_class.mean(axis=1)
    return {"accuracy": accuracy, "f1": f1, "kappa": kappa}


def confusion_matrices(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int,
                       rows: np.ndarray | None = None) -> np.ndarray:
    """Confusion counts (B, k, k) for each row of sample indices ``rows`` (B, n); B = 1 if None."""
    rows = np.arange(len(y_true))[None, :] if rows is None else rows
    codes = y_true[rows] * n_classes + y_pred[rows]                        # (B, n)
    codes = codes + np.arange(len(rows))[:, None] * n_classes**2           # one block per resample
    counts = np.bincount(codes.ravel(), minlength=len(rows) * n_classes**2)
    return counts.reshape(len(rows), n_classes, n_classes)


def bootstrap_intervals(y_true: np.ndarray, y_pred: np.ndarray, *, n_classes: int, samples: int,
                        confidence: float, seed: int) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals for accuracy, F1 and kappa (resampling test rows)."""
    if samples < 1 or not 0 < confidence < 1:
        raise ValueError("samples must be >= 1 and confidence in (0, 1)")
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(y_true), size=(samples, len(y_true)))
    scores = _scores_from_confusion(confusion_matrices(np.asarray(y_true), np.asarray(y_pred),
                                                       n_classes, rows))
    tail = (1 - confidence) / 2 * 100
    return {name: (float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail)))
            for name, v in scores.items()}


def mcnemar(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray) -> dict[str, float]:
    """Exact McNemar test: do models a and b err on different rows more than chance allows?

    ``a_only``: rows a gets right and b wrong; ``b_only`` the reverse. The p-value is the two-sided
    binomial test of ``a_only`` out of ``a_only + b_only`` at 1/2 (1.0 when they never disagree).
    """
    from scipy.stats import binomtest

    right_a, right_b = pred_a == y_true, pred_b == y_true
    a_only, b_only = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
    p_value = binomtest(a_only, a_only + b_only, 0.5).pvalue if a_only + b_only else 1.0
    return {"a_only": a_only, "b_only": b_only, "p_value": float(p_value)}


def accuracy_by_group(y_true: np.ndarray, y_pred: np.ndarray,
                      groups: Sequence[str]) -> dict[str, float]:
    """Accuracy within each group (e.g. origin amazon / imdb / yelp), sorted by group name."""
    groups = np.asarray(groups)
    correct = np.asarray(y_true) == np.asarray(y_pred)
    return {str(g): float(correct[groups == g].mean()) for g in sorted(set(groups.tolist()))}


def training_diagnostics(history: Mapping[str, Sequence[float]],
                         monitor: str = "val_loss") -> dict[str, float]:
    """From a per-epoch history: epochs run, best epoch (1-based, by ``monitor``, lower is
    better), train - val accuracy at the last epoch, times ``monitor`` rose, median
    seconds/epoch."""
    values = list(history.get(monitor, []))
    if not values:
        return {}
    rises = sum(1 for before, after in zip(values, values[1:], strict=False) if after > before)
    gap = (history["accuracy"][-1] - history["val_accuracy"][-1] if "val_accuracy" in history
           else float("nan"))
    return {
        "epochs": len(values),
        "best_epoch": int(np.argmin(values)) + 1,
        "accuracy_gap": float(gap),
        "val_loss_rises": rises,
        "seconds_per_epoch": float(np.median(history["epoch_seconds"])),  # first one traces
    }


def choose_champion(val_scores: Mapping[str, Mapping[str, float]], metric: str) -> str:
    """The model with the best validation ``metric`` (log_loss: lowest), ties to lower log loss,
    then to the first listed."""
    sign = -1.0 if metric == "log_loss" else 1.0
    order = sorted(val_scores, key=lambda name: (-sign * val_scores[name][metric],
                                                  val_scores[name]["log_loss"]))
    return order[0]
