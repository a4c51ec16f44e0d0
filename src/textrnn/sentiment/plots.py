"""Matplotlib figures for evaluation reports, written as PNG files (no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from textrnn.io import atomic_path


def _figure(width: float = 6.0, height: float = 4.5):
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), dpi=100)


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def confusion_matrix(cm: np.ndarray, classes: Sequence[str], title: str, path: Path) -> None:
    """Counts, rows = true class, columns = predicted class."""
    fig, ax = _figure(4.5, 4.0)
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=30)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for (i, j), count in np.ndenumerate(cm):
        ax.text(j, i, str(count), ha="center", va="center",
                color="white" if count > cm.max() / 2 else "black")
    _save(fig, path)


def roc_curves(curves: Mapping[str, tuple[np.ndarray, np.ndarray, float]], title: str,
               path: Path) -> None:
    """One line per model: ``{name: (false positive rates, true positive rates, auc)}``."""
    fig, ax = _figure()
    for name, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")
    _save(fig, path)


def fitted_axis(values: np.ndarray, bounds: np.ndarray) -> tuple[float, float]:
    """(left, right) of an axis that holds every value and interval but far-off ones: values
    more than 3 interquartile ranges below the lower quartile (a dummy baseline) are left out."""
    q1, q3 = np.percentile(values, [25, 75])
    near = values >= q1 - 3 * max(q3 - q1, 0.01)
    low = min(bounds[near, 0].min(), values[near].min())
    high = max(bounds[near, 1].max(), values[near].max())
    pad = 0.08 * max(high - low, 0.01)
    return float(low - pad), float(high + pad)


def metric_intervals(scores: Mapping[str, Mapping[str, float]],
                     intervals: Mapping[str, Mapping[str, tuple[float, float]]],
                     metric_names: Sequence[str], title: str, path: Path, *,
                     champion: str | None = None) -> None:
    """One panel per metric: a dot per model with its interval as a line, models sorted by the
    metric (best on top), each axis fitted to its values, so that 0.81 and 0.86 look apart.

    The names sit on the y axis (no legend to hide a dot); the champion is drawn in another colour.
    A model far below the others (the dummy baseline) is written at the axis' left edge with its
    value instead of stretching the axis to it.
    """
    import matplotlib.pyplot as plt

    rows = len(scores)
    fig, axes = plt.subplots(1, len(metric_names), figsize=(3.2 * len(metric_names),
                                                          0.9 + 0.42 * rows),
                             dpi=100, squeeze=False)
    for ax, metric in zip(axes[0], metric_names, strict=True):
        order = sorted(scores, key=lambda name: scores[name][metric])       # best on top
        values = np.array([scores[name][metric] for name in order])
        bounds = np.array([intervals.get(name, {}).get(metric, (value, value))
                           for name, value in zip(order, values, strict=True)])   # (models, 2)
        left, right = fitted_axis(values, bounds)
        for row, (name, value, (lo, hi)) in enumerate(zip(order, values, bounds, strict=True)):
            color = "C3" if name == champion else "C0"
            if value < left:                                    # off the fitted axis
                ax.annotate(f"{value:.3f} \u2190", (left, row), xytext=(2, 0),
                            textcoords="offset points", va="center", fontsize="small",
                            color="grey")
                continue
            ax.plot([max(lo, left), min(hi, right)], [row, row], color=color, linewidth=2)
            ax.plot(value, row, "o", color=color)
            ax.annotate(f"{value:.3f}", (value, row), xytext=(0, 5), textcoords="offset points",
                        ha="center", fontsize="x-small")
        ax.set_xlim(left, right)
        ax.set_ylim(-0.7, rows - 0.3)
        ax.set_yticks(range(rows), order)
        ax.set_title(metric)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title + (f" (champion, chosen on validation: {champion})" if champion else ""),
                 fontsize="medium")
    _save(fig, path)


def training_curves(histories: Mapping[str, Mapping[str, Sequence[float]]], path: Path) -> None:
    """Loss and accuracy per epoch, train dashed and validation solid, one colour per model."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=100)
    for index, (name, history) in enumerate(histories.items()):
        color = f"C{index % 10}"
        epochs = np.arange(1, len(history["loss"]) + 1)
        for ax, key in zip(axes, ("loss", "accuracy"), strict=True):
            ax.plot(epochs, history[key], color=color, linestyle="--")
            ax.plot(epochs, history[f"val_{key}"], color=color, label=name)
    for ax, key in zip(axes, ("loss", "accuracy"), strict=True):
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.set_title(f"{key} (dashed: train, solid: validation)")
    axes[1].legend(fontsize="small")
    _save(fig, path)


def reliability_diagrams(reliability: Mapping[str, Mapping[str, Sequence[Mapping[str, float]]]],
                         figures: Mapping[str, Mapping[str, float]], path: Path) -> None:
    """One panel per model: accuracy against mean confidence per bin, without and with the
    model's temperature, on the diagonal of perfect calibration. ``reliability[model][kind]``:
    rows of :func:`textrnn.sentiment.calibration.reliability` (kind ``uncalibrated`` or
    ``calibrated``); ``figures[model]``: its ``temperature`` and ``ece_before`` / ``ece_after``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(reliability)
    lowest = min((p["confidence"] for kinds in reliability.values() for points in kinds.values()
                  for p in points), default=0.0)
    left = np.floor(lowest * 10) / 10          # binary models: no confidence below 0.5
    columns = min(4, len(names))
    rows = -(-len(names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.0 * columns, 3.0 * rows), dpi=100,
                             squeeze=False, sharex=True, sharey=True)
    styles = {"uncalibrated": {"color": "tab:red", "marker": "o", "linestyle": "--"},
              "calibrated": {"color": "tab:blue", "marker": "s", "linestyle": "-"}}
    for ax, name in zip(axes.ravel(), names, strict=False):
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        for kind, points in reliability[name].items():
            ax.plot([p["confidence"] for p in points], [p["accuracy"] for p in points],
                    label=kind, markersize=3, **styles.get(kind, {}))
        f = figures[name]
        ax.set_title(f"{name}: T {f['temperature']:.2f}\nECE {f['ece_before']:.3f} -> "
                     f"{f['ece_after']:.3f}", fontsize="small")
        ax.set_xlim(left, 1.0)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("confidence (top probability)")
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy")
    axes[0, 0].legend(loc="upper left", fontsize="x-small")
    _save(fig, path)
