"""split@<task>: train / val / test.

sentiment -> data/split/sentiment/{train,val,test}.parquet, seeded, stratified by label and origin,
             duplicates never in two splits; imdb keeps its upstream test split.
charlm    -> data/split/charlm/{train,val,test}.txt, contiguous by position.
Both write metrics/split_<task>.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from textrnn.charlm import data as charlm_data
from textrnn.config import load_params
from textrnn.data.custom import check_classes
from textrnn.data.splitting import split_table
from textrnn.datasets import CUSTOM, get_dataset
from textrnn.errors import DataError
from textrnn.io import atomic_dir, write_json
from textrnn.stage import run, task_from_argv


def _input(path: str, task: str) -> Path:
    if not Path(path).is_file():
        raise DataError(f"{path} is missing: run `dvc repro preprocess@{task}` first")
    return Path(path)


def split_sentiment(dataset: str, seed: int, fractions, split_column: str | None) -> None:
    path = _input("data/processed/sentiment/data.parquet", "sentiment")
    table = pd.read_parquet(path)
    # A custom table with a split column keeps its own split, as imdb keeps its upstream test set.
    predefined = (bool(split_column) if dataset == CUSTOM
                  else get_dataset(dataset).upstream_test)
    smallest = min(fractions.upstream_val_fraction if predefined else fractions.val, fractions.test)
    check_classes(table, f"{path} ({dataset})", smallest_fraction=smallest)
    splits, dropped = split_table(
        table, train=fractions.train, val=fractions.val, test=fractions.test,
        upstream_val_fraction=fractions.upstream_val_fraction,
        has_upstream_test=predefined, seed=seed,
    )
    with atomic_dir("data/split/sentiment") as out_dir:
        for name, part in splits.items():
            part.to_parquet(out_dir / f"{name}.parquet", index=False)
    summary = {
        name: {"rows": len(part),
               **{str(k): int(v) for k, v in part["label"].value_counts().items()}}
        for name, part in splits.items()
    }
    write_json("metrics/split_sentiment.json",
               {"dataset": dataset, "dropped_train_rows_also_in_test": dropped, **summary})
    print("split@sentiment: " + ", ".join(f"{k} {v['rows']}" for k, v in summary.items()))


def split_charlm(fractions) -> None:
    text = _input("data/processed/charlm/text.txt", "charlm").read_text(encoding="utf-8")
    parts = charlm_data.split_contiguous(text, train=fractions.train, val=fractions.val)
    with atomic_dir("data/split/charlm") as out_dir:
        for name, part in parts.items():
            (out_dir / f"{name}.txt").write_text(part, encoding="utf-8")
    write_json("metrics/split_charlm.json",
               {name: {"characters": len(p)} for name, p in parts.items()})
    print("split@charlm: " + ", ".join(f"{k} {len(v)} chars" for k, v in parts.items()))


def main() -> None:
    task = task_from_argv(sys.argv, "python -m stages.split")
    params = load_params("seed", "data", "split")
    if task == "sentiment":
        split_sentiment(params.data.sentiment, params.seed, params.split.sentiment,
                        params.data.custom.sentiment.split_column)
    else:
        split_charlm(params.split.charlm)


if __name__ == "__main__":
    run(main)
