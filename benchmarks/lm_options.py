"""Which pretraining options make the better language model, and the better ``lm_lstm``
classifier? Each variant (changes to params.yaml's ``pretrain`` section) is pretrained on the same
corpus, at the same budget, as the pretrain_lm stage would; then kind ``lm_lstm`` (params.yaml's,
untuned) is fitted on it with each seed on the sentiment split and scored on val, test and the
behavioural suite.

    python benchmarks/lm_options.py --tokens 2000000 --variant random \\
        --variant ppmi:embedding_init=pretrained \\
        --variant ppmi_linear:embedding_init=pretrained,schedule=linear

A variant is ``name`` or ``name:key=value,key=value`` (values read as YAML). The corpus is read
once (``pretrain.corpus`` is taken as imdb). Needs the sentiment split and, for
``embedding_init=pretrained``, the embed stage's vectors: run `dvc repro embed` first. Nothing is
chosen on test; it is only reported. Writes --out (default reports/lm_options.md) and prints it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from seed_spread import fit_and_score, table, write_report  # noqa: E402  (benchmarks/ is this script's folder)


def parse_variant(text: str) -> tuple[str, dict]:
    """``name:key=value,...`` -> (name, {key: value}), values as YAML scalars."""
    name, _, changes = text.partition(":")
    pairs = [item.split("=", 1) for item in changes.split(",") if item]
    if not name or any(len(pair) != 2 for pair in pairs):
        raise SystemExit(f"--variant {text!r}: expected name or name:key=value,key=value")
    return name, {key.strip(): yaml.safe_load(value) for key, value in pairs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, required=True, help="pretraining budget (tokens)")
    parser.add_argument("--variant", action="append", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--out", default=str(ROOT / "reports/lm_options.md"))
    args = parser.parse_args()
    variants = [parse_variant(text) for text in args.variant]
    os.chdir(ROOT)

    from stages.pretrain_lm import prepare, start_model
    from textrnn import wordlm
    from textrnn.catalog import load_spec
    from textrnn.config import PretrainParams, load_params
    from textrnn.handoff import sentiment_split

    params = load_params("seed", "fetch", "data", "pretrain", "train")
    base = {**params.pretrain.model_dump(), "corpus": "imdb", "train_tokens": args.tokens}
    started = time.perf_counter()
    corpus = prepare(SimpleNamespace(pretrain=PretrainParams.model_validate(base),
                                     seed=params.seed, fetch=params.fetch))
    print(f"corpus: {len(corpus.train_ids):,} train tokens, {len(corpus.val_ids):,} val tokens, "
          f"vocabulary {len(corpus.vocab):,} ({time.perf_counter() - started:.0f} s)", flush=True)
    split = {name: sentiment_split(name) for name in ("train", "val", "test")}
    spec = load_spec("sentiment", "lm_lstm")
    vectorizer = params.train.sentiment.vectorizer[params.data.sentiment]
    rows = []
    for name, changes in variants:
        cfg = PretrainParams.model_validate({**base, **changes})
        model = start_model(corpus.vocab, SimpleNamespace(pretrain=cfg, seed=params.seed))
        with tempfile.TemporaryDirectory(prefix="textrnn-lm-") as tmp:
            history = wordlm.train_lm(model, corpus.train_ids, corpus.val_ids, params=cfg,
                                      seed=params.seed, work_dir=Path(tmp) / "state",
                                      log=lambda line, name=name: print(f"{name}: {line}",
                                                                        flush=True))
            wordlm.save(Path(tmp) / "lm", model, corpus.vocab, {"corpus": "imdb",
                                                                "params": cfg.model_dump()})
            runs = []
            for seed in args.seeds:
                classifier = spec.kind.build(spec.params, vectorizer=vectorizer, key=spec.key,
                                             lm_dir=Path(tmp) / "lm")
                runs.append(fit_and_score(classifier, split, seed))
                print(f"{name} seed {seed}: val {runs[-1]['val']:.4f} test "
                      f"{runs[-1]['test']:.4f} ({runs[-1]['seconds']:.0f} s)", flush=True)
        changed = ", ".join(f"{k}={v}" for k, v in changes.items()) or "params.yaml"
        rows.append((f"{name} ({changed}; val perplexity "
                     f"{history[-1]['val_perplexity']:.1f})", "no", runs))

    seeds = " ".join(map(str, args.seeds))
    variant_args = " ".join(f"--variant {text}" for text in args.variant)
    lines = [f"# Pretraining options at {args.tokens:,} tokens: lm_lstm on "
             f"{params.data.sentiment}, seeds {seeds}", "",
             f"Reproduce: `python benchmarks/lm_options.py --tokens {args.tokens} {variant_args} "
             f"--seeds {seeds}`. Each variant changes params.yaml's pretrain section as shown; "
             "lm_lstm is params.yaml's (untuned). Val perplexity: exact, on the held-out reviews.",
             "", *table(rows)]
    write_report(Path(args.out), lines)


if __name__ == "__main__":
    main()
