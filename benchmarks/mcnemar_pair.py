"""McNemar's exact test between any two trained sentiment models on the test split (evaluate
reports each model against the champion only):

    python benchmarks/mcnemar_pair.py lstm tfidf_logreg

Loads models/sentiment/<name>/model/ (what train_sentiment saved, as the service loads it),
predicts data/split/sentiment/test.parquet and prints both accuracies with the evaluate stage's
bootstrap intervals (evaluate.sentiment's samples and confidence, the seed), the rows each gets
right where the other is wrong, and the two-sided p-value (textrnn.sentiment.evaluation.mcnemar).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a")
    parser.add_argument("b")
    args = parser.parse_args()

    from textrnn import paths
    from textrnn.config import load_params
    from textrnn.handoff import sentiment_split
    from textrnn.sentiment import models
    from textrnn.sentiment.evaluation import bootstrap_intervals, mcnemar

    params = load_params("seed", "evaluate")
    settings = params.evaluate.sentiment
    test = sentiment_split("test")
    y = np.asarray(test.label)
    predicted = {}
    for name in (args.a, args.b):
        model = models.load(paths.model_dir("sentiment", name))
        proba = model.predict_proba(list(test.text))
        predicted[name] = np.asarray(model.classes)[proba.argmax(axis=1)]
        index = {label: i for i, label in enumerate(model.classes)}    # class indices
        low, high = bootstrap_intervals(
            np.array([index[label] for label in y]), proba.argmax(axis=1),
            n_classes=len(model.classes), samples=settings.bootstrap_samples,
            confidence=settings.confidence, seed=params.seed)["accuracy"]
        print(f"{name}: test accuracy {np.mean(predicted[name] == y):.4f} "
              f"({settings.confidence:.0%} interval {low:.4f}-{high:.4f})", flush=True)
    paired = mcnemar(y, predicted[args.a], predicted[args.b])
    print(f"{args.a} right where {args.b} is wrong: {paired['a_only']}; the reverse: "
          f"{paired['b_only']}; McNemar exact p = {paired['p_value']:.3g} "
          f"({len(y)} test rows)")


if __name__ == "__main__":
    main()
