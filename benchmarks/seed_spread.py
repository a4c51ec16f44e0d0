"""How much do the sentiment figures move with the seed? Retrain every model of
train.sentiment.models with each seed and score it on val and test: mean ± std per model, and
for the ensemble (train.sentiment.ensemble.members, when all were retrained) the mean of the
members' probabilities of the same seed.

    python benchmarks/seed_spread.py                  # seeds 1 2 3, the tuned params, all models
    python benchmarks/seed_spread.py --seeds 1 2 3 4 5 --models lstm bilstm
    python benchmarks/seed_spread.py --models lstm lm_lstm --untuned lm_lstm \
        --ensemble lstm,lm_lstm   # params.yaml's lm_lstm; an ensemble of the two as well

Each model is the one params.yaml resolves (a kind, or a variant such as bilstm), with
models/sentiment/<model>/best_params.json laid over it (what train_sentiment uses; not for the
models named by --untuned), and the embed
stage's word vectors; run `dvc repro evaluate_sentiment` first. Nothing is tuned here: the
params were chosen on val before; test is only reported. Each row also has the behavioural
suite's pass rates (negations, and the mean of every capability). Writes --out (default
reports/seed_spread.md) and prints it.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


SPLITS = ("val", "test")
SHOWN = ("negated_negative", "negated_positive")   # "not bad at all", "not fresh": the hard ones


@functools.cache
def suite() -> tuple[dict, list[str]]:
    """The behavioural suite (textrnn.sentiment.behaviour), read once, and its texts."""
    from textrnn.sentiment.behaviour import load_suite, suite_texts

    cases = load_suite()
    return cases, suite_texts(cases)


def behaviour_rates(proba: np.ndarray, classes: list[str]) -> dict[str, float]:
    """Pass rates by capability (and their mean) from the probabilities of the suite's texts."""
    from textrnn.sentiment.behaviour import behaviour_check

    cases, texts = suite()
    lookup = dict(zip(texts, proba, strict=True))
    return behaviour_check(lambda asked: np.stack([lookup[t] for t in asked]), classes,
                           cases).metrics()


def fit_and_score(model, split: dict, seed: int) -> dict:
    """Fit ``model`` (a sentiment model object of the catalog) on split["train"] with ``seed``;
    its probabilities on val, test and the behavioural suite, accuracies and behaviour rates."""
    from textrnn.seeding import seed_everything

    started = time.perf_counter()
    seed_everything(seed)
    with tempfile.TemporaryDirectory(prefix="textrnn-seeds-") as work_dir:
        model.fit(list(split["train"].text), list(split["train"].label),
                  list(split["val"].text), list(split["val"].label), seed=seed,
                  work_dir=Path(work_dir), verbose=0)
    proba = {part: model.predict_proba(list(split[part].text)) for part in SPLITS}
    proba["suite"] = model.predict_proba(suite()[1])
    return {"proba": proba, "seconds": time.perf_counter() - started,
            **score(proba, list(model.classes), split)}


def score(proba: dict, classes: list[str], split: dict) -> dict:
    """Accuracies on val and test and behaviour rates from the probabilities of each part."""
    names = np.asarray(classes)
    out = {part: float(np.mean(names[proba[part].argmax(axis=1)]
                               == split[part].label.to_numpy())) for part in SPLITS}
    out["behaviour"] = behaviour_rates(proba["suite"], classes)
    return out


def table(rows: list[tuple[str, str, list[dict]]]) -> list[str]:
    """Markdown rows: accuracy mean ± std over the runs, per-run test, behaviour means."""
    lines = ["| model | tuned | val accuracy (mean ± std) | test accuracy (mean ± std) | test per "
             "seed | " + " | ".join(f"{name} pass" for name in SHOWN) + " | behaviour mean "
             "| seconds per fit |", "|---|---|---|---|---|" + "---|" * (len(SHOWN) + 2)]
    for name, tuned, runs in rows:
        mean = {part: [r[part] for r in runs] for part in SPLITS}
        rates = [f"{np.mean([r['behaviour'].get(k, np.nan) for r in runs]):.2f}"
                 for k in (*SHOWN, "mean")]
        lines.append(f"| {name} | {tuned} | {np.mean(mean['val']):.4f} ± "
                     f"{np.std(mean['val']):.4f} | {np.mean(mean['test']):.4f} ± "
                     f"{np.std(mean['test']):.4f} | "
                     f"{', '.join(f'{v:.4f}' for v in mean['test'])} | {' | '.join(rates)} | "
                     f"{np.mean([r['seconds'] for r in runs]):.0f} |")
    return lines


def write_report(path: Path, lines: list[str]) -> None:
    """Write the report's lines to ``path`` (folders made as needed) and print them."""
    text = "\n".join(lines) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--models", nargs="+", default=None)
    parser.add_argument("--ensemble", action="append", default=None, metavar="A,B,...",
                        help="members of an ensemble to score (repeatable; default "
                             "train.sentiment.ensemble.members)")
    parser.add_argument("--untuned", nargs="+", default=[], metavar="MODEL",
                        help="these models use params.yaml's values even when tuned")
    parser.add_argument("--out", default=str(ROOT / "reports/seed_spread.md"))
    args = parser.parse_args()
    os.chdir(ROOT)

    from textrnn.catalog import load_spec
    from textrnn.config import load_params
    from textrnn.handoff import sentiment_split, tuned_params
    from textrnn.paths import best_params_path
    from textrnn.sentiment.embeddings import for_model

    params = load_params("seed", "data", "train")
    train_params = params.train.sentiment
    vectorizer = train_params.vectorizer[params.data.sentiment]
    split = {name: sentiment_split(name) for name in ("train", "val", "test")}
    rows: list[tuple[str, str, list[dict]]] = []
    for name in args.models or train_params.models:
        spec = load_spec("sentiment", name)
        model_params, tuned = spec.params, False
        if name not in args.untuned:
            model_params, tuned, _ = tuned_params(spec.params, best_params_path("sentiment", name))
        vectors = for_model(model_params, spec.key)
        runs = []
        for seed in args.seeds:
            model = spec.kind.build(model_params, vectorizer=vectorizer, embeddings=vectors,
                                    key=spec.key)
            runs.append(fit_and_score(model, split, seed))
            print(f"{name} seed {seed}: val {runs[-1]['val']:.4f} test {runs[-1]['test']:.4f} "
                  f"behaviour {runs[-1]['behaviour'].get('mean', float('nan')):.2f} "
                  f"({runs[-1]['seconds']:.0f} s)", flush=True)
        rows.append((name, "yes" if tuned else "no", runs))
    fitted = {name: runs for name, _, runs in rows}
    ensembles = ([text.split(",") for text in args.ensemble] if args.ensemble
                 else [list(train_params.ensemble.members)])
    for members in ensembles:
        if not members or not all(m in fitted for m in members):
            continue
        classes = list(model.classes)   # every model sorts the train labels alike
        runs = []
        for i in range(len(args.seeds)):
            proba = {part: np.mean([fitted[m][i]["proba"][part] for m in members], axis=0)
                     for part in (*SPLITS, "suite")}
            runs.append({**score(proba, classes, split),
                         "seconds": sum(fitted[m][i]["seconds"] for m in members)})
        rows.append((f"ensemble (mean of {', '.join(members)})", "yes", runs))

    seeds = " ".join(map(str, args.seeds))
    lines = [f"# Sentiment accuracy over seeds {seeds} ({params.data.sentiment})", "",
             "Reproduce: `python benchmarks/seed_spread.py " + " ".join(sys.argv[1:]) + "` after "
             "`dvc repro evaluate_sentiment`. Params: params.yaml + each model's best_params.json. "
             "Behaviour: pass rates of the behavioural suite (src/textrnn/sentiment/behaviour.yaml;"
             " negated_negative is \"not bad at all\" -> positive), mean over the seeds.",
             "", *table(rows)]
    write_report(Path(args.out), lines)


if __name__ == "__main__":
    main()
