"""Naive GridSearchCV over a Keras LSTM vs the tune stage, same data, same space, one run.

The naive way, as published student projects do it: scikit-learn ``GridSearchCV`` with 3-fold
cross-validation over a small Keras estimator that pads every sentence to the longest one (at the
front, as Keras' pad_sequences does by default; no masking, no bucketing), trying every point of
the grid, then refitting the best on all of train.
The tune way: this repository's Optuna study (TPE, median pruning on the per-epoch validation
score, bucketed batches) over the same grid as categorical choices, a few trials.

Both are scored on the same validation split (the grid's refitted best model; tune's best trial).
Prints wall times, best validation accuracies and the ratio. Not a test: run it on a quiet machine.

    .venv/bin/python benchmarks/bench_tune_vs_grid.py            # ~25 min on 2 cores
    .venv/bin/python benchmarks/bench_tune_vs_grid.py --quick    # a smoke run, ~2 min
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.base import BaseEstimator, ClassifierMixin  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPLIT = ROOT / "data/split/sentiment"

# The sub-grid: 2 x 3 x 2 x 2 = 24 points x 3 folds = 72 fits (+1 refit), ~20 min the naive way.
GRID = {"optimizer": ["adam", "rmsprop"], "learning_rate": [0.01, 0.001, 0.0005],
        "units": [64, 128], "dropout": [0.3, 0.5]}
FIXED = {"embedding_dim": 64, "batch_size": 32, "epochs": 5}
QUICK_GRID = {"learning_rate": [0.01, 0.001], "units": [32]}
QUICK_FIXED = {"embedding_dim": 32, "batch_size": 32, "epochs": 2}


class PaddedKerasLSTM(BaseEstimator, ClassifierMixin):
    """The naive estimator: vectorize, pad every text to the longest one, Embedding -> LSTM."""

    def __init__(self, optimizer="adam", learning_rate=0.001, units=64, dropout=0.3,
                 embedding_dim=64, batch_size=32, epochs=5, seed=42):
        self.optimizer, self.learning_rate, self.units, self.dropout = (
            optimizer, learning_rate, units, dropout)
        self.embedding_dim, self.batch_size, self.epochs, self.seed = (
            embedding_dim, batch_size, epochs, seed)

    def fit(self, texts, labels):
        import keras

        keras.utils.set_random_seed(self.seed)
        self.classes_ = np.unique(labels)
        longest = max(len(str(t).split()) for t in texts)
        self.vectorizer_ = keras.layers.TextVectorization(max_tokens=8000,
                                                          output_sequence_length=longest)
        self.vectorizer_.adapt(np.asarray(texts, dtype=object))
        ids = self._pre_padded(texts)                                      # (n, longest)
        model = keras.Sequential([
            keras.Input(shape=(longest,), dtype="int32"),
            keras.layers.Embedding(8000, self.embedding_dim),          # no mask, as the naive way
            keras.layers.LSTM(self.units, dropout=self.dropout),
            keras.layers.Dense(len(self.classes_), activation="softmax"),
        ])
        opt = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop}[self.optimizer]
        model.compile(optimizer=opt(learning_rate=self.learning_rate),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        y = np.searchsorted(self.classes_, labels)
        model.fit(ids, y, batch_size=self.batch_size, epochs=self.epochs, verbose=0)
        self.model_ = model
        return self

    def _pre_padded(self, texts) -> np.ndarray:
        """Token ids padded at the front, as Keras' pad_sequences does by default (what the
        published projects used): without a mask, zeros after the text would wash out the LSTM's
        state and leave it at chance, which would make the naive way look worse than it is."""
        ids = np.asarray(self.vectorizer_(np.asarray(texts, dtype=object)))
        lengths = (ids != 0).sum(axis=1)
        return np.stack([np.roll(row, row.size - n) for row, n in zip(ids, lengths, strict=True)])

    def predict(self, texts):
        ids = self._pre_padded(texts)
        return self.classes_[self.model_.predict(ids, verbose=0).argmax(axis=1)]


def naive_grid(train: pd.DataFrame, val: pd.DataFrame, grid: dict,
               fixed: dict) -> tuple[float, float, dict]:
    from sklearn.model_selection import GridSearchCV

    started = time.perf_counter()
    search = GridSearchCV(PaddedKerasLSTM(**fixed), grid, cv=3, scoring="accuracy", refit=True)
    search.fit(np.asarray(train.text, dtype=object), np.asarray(train.label))
    seconds = time.perf_counter() - started
    val_acc = float(np.mean(search.predict(np.asarray(val.text, dtype=object)) == val.label))
    return seconds, val_acc, search.best_params_


def tune_way(train: pd.DataFrame, val: pd.DataFrame, grid: dict, fixed: dict, trials: int,
             storage_dir: Path) -> tuple[float, float, dict, int]:
    from textrnn.catalog import load_spec
    from textrnn.config import load_params
    from textrnn.tuning.objectives import SentimentData, SentimentObjective
    from textrnn.tuning.space import parse_dimension
    from textrnn.tuning.study import StudySpec, run_trials

    params = load_params("seed", "train", path=ROOT / "params.yaml")
    spec = load_spec("sentiment", "lstm", path=str(ROOT / "params.yaml"))
    # random initial embeddings, as in the naive estimator: the two ways differ in search alone
    base = spec.params.model_copy(update={"embedding_init": "random"})
    space = {name: parse_dimension(values) for name, values in grid.items()}
    started = time.perf_counter()
    objective = SentimentObjective(
        model="lstm", kind=spec.kind, base=base,
        vectorizer=params.train.sentiment.vectorizer["uci"],
        data=SentimentData(list(train.text), list(train.label), list(val.text), list(val.label)),
        seed=params.seed, fixed={**fixed, "patience": 2},
    )
    spec = StudySpec(task="bench", model="lstm", direction="maximize", space=space,
                     sampler="tpe", pruner="median", n_trials=trials, timeout_s=0,
                     warmup_epochs=2, max_epochs=fixed["epochs"], seed=params.seed,
                     defaults={name: values[0] for name, values in grid.items()})
    study = run_trials(spec, objective, storage_url=f"sqlite:///{storage_dir}/bench.db",
                       heartbeat_s=15, enqueue_defaults=False)
    seconds = time.perf_counter() - started
    return seconds, float(study.best_value), study.best_params, len(study.trials)


def main() -> None:
    from summary import emit

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny grid on 600 rows (smoke run)")
    parser.add_argument("--trials", type=int, default=10, help="tune's budget (default 10)")
    args = parser.parse_args()
    if not (SPLIT / "train.parquet").is_file():
        sys.exit(f"{SPLIT}/train.parquet is missing: run `dvc repro split@sentiment` first")
    train = pd.read_parquet(SPLIT / "train.parquet")
    val = pd.read_parquet(SPLIT / "val.parquet")
    grid, fixed = (QUICK_GRID, QUICK_FIXED) if args.quick else (GRID, FIXED)
    if args.quick:
        train = train.sample(600, random_state=0)
    points = len(list(itertools.product(*grid.values())))
    print(f"data: {len(train)} train, {len(val)} val sentences (UCI); grid: {points} points "
          f"{grid}, fixed {fixed}")

    print(f"naive: GridSearchCV, 3-fold CV, {points * 3} fits + 1 refit, padding to the "
          "longest ...", flush=True)
    grid_s, grid_acc, grid_best = naive_grid(train, val, grid, fixed)
    print(f"tune: Optuna TPE + median pruning, {args.trials} trials, bucketed batches ...",
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tune_s, tune_acc, tune_best, n = tune_way(train, val, grid, fixed, args.trials, Path(tmp))

    print()
    print(f"{'':24}{'wall time':>12}{'best val accuracy':>20}   best params")
    print(f"{'naive GridSearchCV':24}{grid_s:>11.0f}s{grid_acc:>20.4f}   {grid_best}")
    print(f"{'tune (Optuna)':24}{tune_s:>11.0f}s{tune_acc:>20.4f}   {tune_best}  ({n} trials)")
    print(f"time ratio tune / grid: {tune_s / grid_s:.3f} (target <= 0.1); "
          f"score: tune {'>=' if tune_acc >= grid_acc else '<'} grid")
    emit([{"benchmark": "tuning", "what": f"tune wall time ({n} trials; grid {points} points x 3 "
           "folds)", "value": tune_s, "unit": "s", "naive": grid_s, "ratio": tune_s / grid_s,
           "target": "<= 0.1x the grid's time"},
          {"benchmark": "tuning", "what": "best validation accuracy", "value": tune_acc,
           "unit": "", "naive": grid_acc, "ratio": None, "target": ">= the grid's"}])


if __name__ == "__main__":
    main()
