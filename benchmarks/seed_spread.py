"""How much do the sentiment figures move with the seed? Retrain every model of
train.sentiment.models with each seed and score it on val and test: mean ± std per model, and
for the ensemble (train.sentiment.ensemble.members, when all were retrained) the mean of the
members' probabilities of the same seed.

    python benchmarks/seed_spread.py                  # seeds 1 2 3, the tuned params, all models
    python benchmarks/seed_spread.py --seeds 1 2 3 4 5 --models lstm bilstm

Each model is the one params.yaml resolves (a kind, or a variant such as bilstm), with
models/sentiment/<model>/best_params.json laid over it (what train_sentiment uses), and the embed
stage's word vectors; run `dvc repro evaluate_sentiment` first. Nothing is tuned here: the
params were chosen on val before; test is only reported. Writes reports/seed_spread.md (the
table) and prints it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--models", nargs="+", default=None)
    parser.add_argument("--out", default=str(ROOT / "reports/seed_spread.md"))
    args = parser.parse_args()
    os.chdir(ROOT)

    from textrnn.catalog import load_spec
    from textrnn.config import load_params
    from textrnn.handoff import sentiment_split, tuned_params
    from textrnn.paths import best_params_path
    from textrnn.seeding import seed_everything
    from textrnn.sentiment.embeddings import for_model

    params = load_params("seed", "data", "train")
    train_params = params.train.sentiment
    vectorizer = train_params.vectorizer[params.data.sentiment]
    split = {name: sentiment_split(name) for name in ("train", "val", "test")}
    rows = []
    proba: dict[str, dict[str, list[np.ndarray]]] = {}   # model -> split -> one array per seed
    for name in args.models or train_params.models:
        spec = load_spec("sentiment", name)
        model_params, tuned, _ = tuned_params(spec.params, best_params_path("sentiment", name))
        vectors = for_model(model_params, spec.key)
        scores = {"val": [], "test": [], "seconds": []}
        proba[name] = {"val": [], "test": []}
        for seed in args.seeds:
            started = time.perf_counter()
            seed_everything(seed)
            model = spec.kind.build(model_params, vectorizer=vectorizer, embeddings=vectors,
                                    key=spec.key)
            with tempfile.TemporaryDirectory(prefix="textrnn-seeds-") as work_dir:
                model.fit(list(split["train"].text), list(split["train"].label),
                          list(split["val"].text), list(split["val"].label), seed=seed,
                          work_dir=Path(work_dir), verbose=0)
            for part in ("val", "test"):
                proba[name][part].append(model.predict_proba(list(split[part].text)))
                predicted = np.asarray(model.classes)[proba[name][part][-1].argmax(axis=1)]
                scores[part].append(float(np.mean(predicted == split[part].label.to_numpy())))
            scores["seconds"].append(time.perf_counter() - started)
            print(f"{name} seed {seed}: val {scores['val'][-1]:.4f} test {scores['test'][-1]:.4f} "
                  f"({scores['seconds'][-1]:.0f} s)", flush=True)
        rows.append((name, tuned, scores))
    members = list(train_params.ensemble.members)
    if members and all(m in proba for m in members):
        classes = np.asarray(model.classes)   # every model sorts the train labels alike
        scores = {part: [] for part in ("val", "test", "seconds")}
        for i in range(len(args.seeds)):
            for part in ("val", "test"):
                mean = np.mean([proba[m][part][i] for m in members], axis=0)
                scores[part].append(float(np.mean(classes[mean.argmax(axis=1)]
                                                  == split[part].label.to_numpy())))
            scores["seconds"].append(sum(s["seconds"][i] for n, _, s in rows if n in members))
        rows.append((f"ensemble (mean of {', '.join(members)})", True, scores))

    seeds = " ".join(map(str, args.seeds))
    lines = [f"# Sentiment accuracy over seeds {seeds} ({params.data.sentiment})", "",
             "Reproduce: `python benchmarks/seed_spread.py --seeds " + seeds + "` after "
             "`dvc repro evaluate_sentiment`. Params: params.yaml + each model's best_params.json.",
             "", "| model | tuned | val accuracy (mean ± std) | test accuracy (mean ± std) | "
             "test per seed | seconds per fit |", "|---|---|---|---|---|---|"]
    for name, tuned, s in rows:
        lines.append(f"| {name} | {'yes' if tuned else 'no'} | {np.mean(s['val']):.4f} ± "
                     f"{np.std(s['val']):.4f} | {np.mean(s['test']):.4f} ± {np.std(s['test']):.4f} "
                     f"| {', '.join(f'{v:.4f}' for v in s['test'])} | "
                     f"{np.mean(s['seconds']):.0f} |")
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
