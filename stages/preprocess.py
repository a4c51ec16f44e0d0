"""preprocess@<task>: parse and validate the raw file, clean it, profile it.

sentiment -> data/processed/sentiment/data.parquet (text, label, origin)
charlm    -> data/processed/charlm/text.txt
Both write metrics/data_<task>.json (profile) and plots/data/<task>/ (plot data and images).
"""

from __future__ import annotations

import sys
from pathlib import Path

from textrnn.config import load_params
from textrnn.data import charlm, plots, sentiment
from textrnn.data.sources import get_source
from textrnn.errors import DataError
from textrnn.io import atomic_dir, write_json
from textrnn.stage import run, task_from_argv


def _raw_file(task: str, dataset: str) -> Path:
    path = Path("data/raw") / task / get_source(dataset).filename
    if not path.is_file():
        raise DataError(f"{path} is missing: run `dvc repro fetch@{task}` first")
    return path


def preprocess_sentiment(dataset: str, strip_html: bool, drop_duplicates: bool) -> None:
    raw = sentiment.READERS[dataset](_raw_file("sentiment", dataset))
    table, dropped = sentiment.clean(raw, strip_html=strip_html, drop_duplicates=drop_duplicates)
    profile = {"dataset": dataset, **sentiment.profile(len(raw), table, dropped)}
    with atomic_dir("data/processed/sentiment") as out_dir:
        table.to_parquet(out_dir / "data.parquet", index=False)
    with atomic_dir("plots/data/sentiment") as plot_dir:
        plots.length_distribution(table, plot_dir)
        plots.class_balance(table, plot_dir)
    write_json("metrics/data_sentiment.json", profile)
    print(f"preprocess@sentiment: {profile['rows']} rows ({dropped} duplicates removed)")


def preprocess_charlm(dataset: str, lowercase: bool, min_chars: int) -> None:
    path = _raw_file("charlm", dataset)
    text = charlm.clean(charlm.READERS[dataset](path), lowercase=lowercase)
    if len(text) < min_chars:
        raise DataError(
            f"{path}: {len(text)} characters after cleaning, fewer than "
            f"preprocess.charlm.min_chars = {min_chars}"
        )
    profile = {"dataset": dataset, **charlm.profile(text)}
    with atomic_dir("data/processed/charlm") as out_dir:
        (out_dir / "text.txt").write_text(text, encoding="utf-8")
    with atomic_dir("plots/data/charlm") as plot_dir:
        plots.char_frequency(text, plot_dir)
    write_json("metrics/data_charlm.json", profile)
    print(f"preprocess@charlm: {profile['characters']} characters")


def main() -> None:
    task = task_from_argv(sys.argv, "python -m stages.preprocess")
    params = load_params("data", "preprocess")
    if task == "sentiment":
        cfg = params.preprocess.sentiment
        preprocess_sentiment(params.data.sentiment, cfg.strip_html, cfg.drop_duplicates)
    else:
        cfg = params.preprocess.charlm
        preprocess_charlm(params.data.charlm, cfg.lowercase, cfg.min_chars)


if __name__ == "__main__":
    run(main)
