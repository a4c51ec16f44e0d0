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


def metric_bars(scores: Mapping[str, Mapping[str, float]],
                intervals: Mapping[str, Mapping[str, tuple[float, float]]],
                metric_names: Sequence[str], title: str, path: Path) -> None:
    """Grouped bars: one group per metric, one bar per model, error bars where an interval
    exists."""
    models = list(scores)
    fig, ax = _figure(max(6.0, 1.2 * len(metric_names)), 4.5)
    width = 0.8 / max(len(models), 1)
    x = np.arange(len(metric_names))
    for index, model in enumerate(models):
        values = np.array([scores[model][m] for m in metric_names])
        errors = np.array([
            [values[i] - intervals[model][m][0], intervals[model][m][1] - values[i]]
            if m in intervals.get(model, {}) else [0.0, 0.0]
            for i, m in enumerate(metric_names)
        ]).T                                                       # (2, metrics)
        ax.bar(x + index * width, values, width, yerr=np.clip(errors, 0, None), capsize=2,
               label=model)
    ax.set_xticks(x + width * (len(models) - 1) / 2, metric_names)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize="small", ncol=2)
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
