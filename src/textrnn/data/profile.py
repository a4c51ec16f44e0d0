"""Data-profile plots: plot data (CSV, drawn by `dvc plots show`) and PNG images for reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def _figure():
    import matplotlib

    matplotlib.use("Agg")  # no display: render to files only
    import matplotlib.pyplot as plt

    return plt


def length_distribution(frame: pd.DataFrame, out_dir: Path, bins: int = 40) -> None:
    """lengths.csv (tokens per text, histogram) and length_distribution.png, one colour per
    origin."""
    lengths = frame["text"].str.split().str.len()
    edges = np.unique(np.linspace(0, max(int(np.percentile(lengths, 99)), 1), bins + 1).round())
    counts, _ = np.histogram(lengths.clip(upper=edges[-1]), bins=edges)
    pd.DataFrame({"tokens": edges[1:].astype(int), "texts": counts}).to_csv(
        out_dir / "lengths.csv", index=False
    )
    plt = _figure()
    fig, ax = plt.subplots(figsize=(7, 4))
    for origin, part in frame.groupby("origin"):
        ax.hist(part["text"].str.split().str.len().clip(upper=edges[-1]), bins=edges,
                alpha=0.6, label=str(origin))
    ax.set(xlabel="tokens per text (clipped at the 99th percentile)", ylabel="texts",
           title="Text length by origin")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "length_distribution.png", dpi=100)
    plt.close(fig)


def class_balance(frame: pd.DataFrame, out_dir: Path) -> None:
    """class_balance.csv (rows per origin and label) and class_balance.png."""
    table = frame.groupby(["origin", "label"]).size().rename("rows").reset_index()
    table["group"] = table["origin"].astype(str) + " / " + table["label"].astype(str)
    table[["group", "rows"]].to_csv(out_dir / "class_balance.csv", index=False)
    plt = _figure()
    pivot = table.pivot(index="origin", columns="label", values="rows").fillna(0)
    ax = pivot.plot.bar(figsize=(7, 4), rot=0)
    ax.set(ylabel="rows", title="Class balance by origin")
    ax.figure.tight_layout()
    ax.figure.savefig(out_dir / "class_balance.png", dpi=100)
    plt.close(ax.figure)


def char_frequency(text: str, out_dir: Path, top: int = 60) -> None:
    """char_frequency.csv and .png: the most frequent characters (whitespace shown by name)."""
    counts = pd.Series(list(text)).value_counts().head(top)
    names = {" ": "<space>", "\n": "<newline>", "\t": "<tab>"}
    table = pd.DataFrame({"char": [names.get(c, c) for c in counts.index],
                          "share": (counts.to_numpy() / len(text)).round(6)})
    table.to_csv(out_dir / "char_frequency.csv", index=False)
    plt = _figure()
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.bar(range(len(table)), table["share"])
    ax.set_xticks(range(len(table)), table["char"], rotation=90, fontsize=7)
    ax.set(ylabel="share of characters", title=f"The {len(table)} most frequent characters")
    fig.tight_layout()
    fig.savefig(out_dir / "char_frequency.png", dpi=100)
    plt.close(fig)
