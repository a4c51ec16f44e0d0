"""Calibrated probabilities: temperature scaling, expected calibration error, Brier score.

A network trained to minimise cross-entropy until early stopping is usually over-confident: of
the test sentences it calls positive with probability 0.99, fewer than 99 in 100 are. Temperature
scaling (Guo et al., ICML 2017) divides the logits by one number T fitted on the validation split,
which keeps every prediction's class (the order of the logits does not change) and makes the
probabilities mean what they say. The train and ensemble stages fit T here and keep it inside the
saved model (a :class:`textrnn.layers.Temperature` layer, or the scaled weights of a linear
model), so the service and ``mlflow.pyfunc`` return calibrated probabilities.

Pure functions on arrays: ``y`` holds class indices (n,), ``proba`` probabilities (n, n_classes).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

ECE_BINS = 15           # equal-width confidence bins, as in Guo et al.
TEMPERATURE_RANGE = (0.05, 20.0)


def rescale(proba: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log(proba) / temperature)``: what a :class:`~textrnn.layers.Temperature` layer
    with ``temperature`` outputs; ``rescale(rescale(p, t), 1 / t)`` gives ``p`` back."""
    logits = np.log(np.clip(np.asarray(proba, dtype="float64"), 1e-30, None)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def nll(y: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes."""
    picked = np.asarray(proba, dtype="float64")[np.arange(len(y)), np.asarray(y)]
    return float(-np.mean(np.log(np.clip(picked, 1e-15, None))))


def fit_temperature(y: np.ndarray, proba: np.ndarray) -> float:
    """The temperature in ``TEMPERATURE_RANGE`` that minimises the NLL of ``rescale(proba, T)``.

    One parameter, a smooth convex objective in log T: a bounded scalar search finds it. Constant
    probabilities (a prior-only model) carry no logit to scale: 1.0.
    """
    from scipy.optimize import minimize_scalar

    proba = np.asarray(proba, dtype="float64")
    if len(y) == 0 or np.allclose(proba, proba[:1]):
        return 1.0
    low, high = np.log(TEMPERATURE_RANGE[0]), np.log(TEMPERATURE_RANGE[1])
    found = minimize_scalar(lambda log_t: nll(y, rescale(proba, float(np.exp(log_t)))),
                            bounds=(low, high), method="bounded", options={"xatol": 1e-4})
    temperature = float(np.exp(found.x))
    # never worse than leaving the model alone (a flat objective near T = 1)
    return temperature if nll(y, rescale(proba, temperature)) < nll(y, proba) else 1.0


def expected_calibration_error(y: np.ndarray, proba: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: the mean |accuracy - confidence| over equal-width bins of the top-class probability,
    weighted by the share of rows in each bin (0 = perfectly calibrated)."""
    table = reliability(y, proba, bins)
    n = sum(row["count"] for row in table)
    return float(sum(row["count"] * abs(row["accuracy"] - row["confidence"]) for row in table)
                 / max(n, 1))


def reliability(y: np.ndarray, proba: np.ndarray, bins: int = ECE_BINS) -> list[dict]:
    """One row per non-empty confidence bin: ``bin`` (its upper edge), ``confidence`` (mean top
    probability), ``accuracy`` (share right), ``count``: the points of a reliability diagram."""
    proba = np.asarray(proba, dtype="float64")
    confidence = proba.max(axis=1)                                           # (n,)
    correct = proba.argmax(axis=1) == np.asarray(y)                          # (n,)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    rows = []
    for b in range(bins):
        inside = which == b
        if inside.any():
            rows.append({"bin": float(edges[b + 1]), "confidence": float(confidence[inside].mean()),
                         "accuracy": float(correct[inside].mean()), "count": int(inside.sum())})
    return rows


def brier_score(y: np.ndarray, proba: np.ndarray) -> float:
    """Mean squared error of the probabilities (0 best). Two classes: of class index 1's
    probability, as scikit-learn's ``brier_score_loss``; more: summed over classes."""
    proba = np.asarray(proba, dtype="float64")
    onehot = np.eye(proba.shape[1])[np.asarray(y)]
    if proba.shape[1] == 2:
        return float(np.mean((proba[:, 1] - onehot[:, 1]) ** 2))
    return float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))


@dataclass(frozen=True)
class Calibration:
    """A fitted temperature with the validation figures before and after it (meta.json)."""

    temperature: float
    val_nll_before: float
    val_nll_after: float
    val_ece_before: float
    val_ece_after: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def calibrate(y_val: np.ndarray, proba_val: np.ndarray) -> Calibration:
    """Fit the temperature on the validation split's ``proba_val`` (never test)."""
    temperature = fit_temperature(y_val, proba_val)
    after = rescale(proba_val, temperature)
    return Calibration(temperature, nll(y_val, proba_val), nll(y_val, after),
                       expected_calibration_error(y_val, proba_val),
                       expected_calibration_error(y_val, after))


def calibration_metrics(y: np.ndarray, calibrated: np.ndarray, temperature: float, *,
                        samples: int, confidence: float, seed: int) -> dict:
    """ECE and Brier score of a model's probabilities before (``rescale(calibrated, 1 / T)``) and
    after temperature scaling, with percentile bootstrap intervals over the same resampled rows
    for both, and of the paired change ``<metric>_change`` (after - before)."""
    before = rescale(calibrated, 1.0 / temperature)
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(y), size=(samples, len(y)))
    tail = (1 - confidence) / 2 * 100
    out: dict = {"temperature": float(temperature)}

    def interval(values: list[float]) -> list[float]:
        return [float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))]

    for metric, fn in (("ece", expected_calibration_error), ("brier", brier_score)):
        resampled = {}
        for name, proba in (("before", before), ("after", calibrated)):
            resampled[name] = np.array([fn(y[r], proba[r]) for r in rows])
            out[f"{metric}_{name}"] = fn(y, proba)
            out[f"{metric}_{name}_ci"] = interval(resampled[name])
        # after - before on the same resampled rows: an interval below 0 = a real improvement
        out[f"{metric}_change"] = out[f"{metric}_after"] - out[f"{metric}_before"]
        out[f"{metric}_change_ci"] = interval(resampled["after"] - resampled["before"])
    return out
