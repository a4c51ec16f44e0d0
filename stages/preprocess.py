"""preprocess@<task>: parse and validate the raw file, clean it, profile it.

sentiment -> data/processed/sentiment/data.parquet (text, label, origin)
charlm    -> data/processed/charlm/text.txt
Both write metrics/data_<task>.json (profile) and plots/data/<task>/ (plot data and images).
"""

from __future__ import annotations

import sys
from pathlib import Path

from textrnn.charlm import data as charlm_data
from textrnn.config import load_params
from textrnn.data import custom
from textrnn.data.profile import char_frequency, class_balance, length_distribution
from textrnn.datasets import CUSTOM, get_dataset
from textrnn.errors import DataError
from textrnn.io import atomic_dir, write_json
from textrnn.sentiment import data as sentiment_data
from textrnn.stage import run, task_from_argv


def _raw_file(task: str, dataset: str) -> Path:
    folder = Path("data/raw") / task
    if dataset == CUSTOM:  # the user's file or folder, under its own name
        found = (sorted(p for p in folder.glob("*") if not p.name.startswith("."))
                 if folder.is_dir() else [])
        path = found[0] if found else folder / "<your file>"
    else:
        path = folder / get_dataset(dataset).filename
    if not path.exists():
        raise DataError(f"{path} is missing: run `dvc repro fetch@{task}` first")
    return path


def preprocess_sentiment(dataset: str, strip_html: bool, drop_duplicates: bool, custom_cfg) -> None:
    path = _raw_file("sentiment", dataset)
    empty = 0
    if dataset == CUSTOM:
        raw, empty = custom.load_table(path, custom_cfg)
    else:
        raw = get_dataset(dataset).read(path)
    table, dropped = sentiment_data.clean(raw, strip_html=strip_html,
                                          drop_duplicates=drop_duplicates)
    profile = {"dataset": dataset, "empty_rows_dropped": empty,
               **sentiment_data.profile(len(raw) + empty, table, dropped)}
    with atomic_dir("data/processed/sentiment") as out_dir:
        table.to_parquet(out_dir / "data.parquet", index=False)
    with atomic_dir("plots/data/sentiment") as plot_dir:
        length_distribution(table, plot_dir)
        class_balance(table, plot_dir)
    write_json("metrics/data_sentiment.json", profile)
    print(f"preprocess@sentiment: {profile['rows']} rows ({dropped} duplicates removed)")


def preprocess_charlm(dataset: str, lowercase: bool, min_chars: int, custom_cfg) -> None:
    path = _raw_file("charlm", dataset)
    raw = (custom.load_text(path, custom_cfg) if dataset == CUSTOM
           else get_dataset(dataset).read(path))
    text = charlm_data.clean(raw, lowercase=lowercase)
    if len(text) < min_chars:
        raise DataError(
            f"{path}: {len(text)} characters after cleaning, fewer than "
            f"preprocess.charlm.min_chars = {min_chars}"
        )
    profile = {"dataset": dataset, **charlm_data.profile(text)}
    with atomic_dir("data/processed/charlm") as out_dir:
        (out_dir / "text.txt").write_text(text, encoding="utf-8")
    with atomic_dir("plots/data/charlm") as plot_dir:
        char_frequency(text, plot_dir)
    write_json("metrics/data_charlm.json", profile)
    print(f"preprocess@charlm: {profile['characters']} characters")


def main() -> None:
    task = task_from_argv(sys.argv, "python -m stages.preprocess")
    params = load_params("data", "preprocess")
    if task == "sentiment":
        cfg = params.preprocess.sentiment
        preprocess_sentiment(params.data.sentiment, cfg.strip_html, cfg.drop_duplicates,
                             params.data.custom.sentiment)
    else:
        cfg = params.preprocess.charlm
        preprocess_charlm(params.data.charlm, cfg.lowercase, cfg.min_chars,
                          params.data.custom.charlm)


if __name__ == "__main__":
    run(main)
