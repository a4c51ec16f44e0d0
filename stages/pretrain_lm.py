"""pretrain_lm: a word-level LSTM language model learned without labels from IMDb reviews, for the
``lm_lstm`` sentiment kind to fine-tune (ULMFiT-style; textrnn.wordlm).

-> models/lm/                  lm.keras, vocab.txt, meta.json (only meta.json with corpus none)
-> models/lm_state/            the training checkpoint (DVC persist): a killed run resumes from it
-> metrics/pretrain_lm.json    exact validation perplexity, budget, throughput, corpus sizes
-> plots/lm/history.csv        per evaluation: step, tokens, train_loss, val_perplexity, seconds

Corpus ``imdb``: the 50k labelled reviews (upstream train and test) and the 50k unlabelled ones
of the IMDb archive, fetched like any dataset (mirror or download); labels are never read. A
review that is the text of a sentiment val or test row (case and whitespace folded) is left out.
``pretrain.val_reviews`` reviews, drawn with the seed, are held out for the exact validation
perplexity; the vocabulary comes from the other reviews plus the sentiment train split's words.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

from textrnn.config import load_params
from textrnn.errors import DataError
from textrnn.handoff import sentiment_split
from textrnn.io import atomic_dir, atomic_path, write_json
from textrnn.stage import run

OUT_DIR = Path("models/lm")
STATE_DIR = Path("models/lm_state")
METRICS = Path("metrics/pretrain_lm.json")
HISTORY = Path("plots/lm/history.csv")
HISTORY_COLUMNS = ("step", "tokens", "train_loss", "val_perplexity", "seconds")


def _split_reviews(reviews: list[str], count: int, seed: int) -> tuple[list[str], list[str]]:
    """``count`` reviews drawn with ``seed`` (validation) and the rest (training), in order."""
    import numpy as np

    if len(reviews) <= count:
        raise DataError(f"the corpus has {len(reviews)} reviews: too few to hold out "
                        f"pretrain.val_reviews = {count} and train on the rest")
    held = np.zeros(len(reviews), bool)
    held[np.random.default_rng(seed).choice(len(reviews), size=count, replace=False)] = True
    return ([text for text, out in zip(reviews, held, strict=True) if not out],
            [text for text, out in zip(reviews, held, strict=True) if out])


def _write_history(rows: list[dict]) -> None:
    with atomic_path(HISTORY) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HISTORY_COLUMNS)
        for row in rows:
            writer.writerow([row["step"], row["tokens"], f"{row['train_loss']:.6g}",
                             f"{row['val_perplexity']:.6g}", f"{row['seconds']:.1f}"])


def main() -> None:
    params = load_params("seed", "fetch", "pretrain")
    cfg = params.pretrain
    if cfg.corpus == "none":
        with atomic_dir(OUT_DIR) as tmp:
            write_json(tmp / "meta.json", {"corpus": "none"})
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        _write_history([])
        write_json(METRICS, {"corpus": "none"})
        print("pretrain_lm: pretrain.corpus is 'none': no language model")
        return
    start = time.perf_counter()
    splits = {name: sentiment_split(name, ["text"]).text.tolist()
              for name in ("train", "val", "test")}

    from textrnn.sentiment.corpus import imdb_corpus

    corpus, left_out = imdb_corpus(splits["val"] + splits["test"], unlabelled=True,
                                   timeout_s=params.fetch.timeout_s, retries=params.fetch.retries)
    train_texts, val_texts = _split_reviews(corpus, cfg.val_reviews, params.seed)

    from textrnn import wordlm
    from textrnn.seeding import seed_everything

    seed_everything(params.seed)
    vocab = wordlm.build_vocabulary(train_texts, splits["train"], cfg.vocabulary)
    train_ids, val_ids = wordlm.encode(train_texts, vocab), wordlm.encode(val_texts, vocab)
    per_step = cfg.batch_size * cfg.sequence_length
    steps = -(-cfg.train_tokens // per_step)
    unknown = float((val_ids == wordlm.UNK_ID).mean())
    print(f"pretrain_lm: {len(corpus)} IMDb reviews ({left_out} left out: the "
          f"text of a sentiment val/test row): {len(train_texts)} train ({len(train_ids):,} "
          f"tokens), {len(val_texts)} val ({len(val_ids):,} tokens, {unknown:.2%} unknown)\n"
          f"pretrain_lm: vocabulary {len(vocab):,} words (the {cfg.vocabulary:,} most frequent "
          f"+ the sentiment train split's others); {steps} steps of {cfg.batch_size} x "
          f"{cfg.sequence_length} tokens, "
          + (f"sampled softmax of {cfg.sampled}" if cfg.sampled else "full softmax")
          + f"; corpus read and encoded in {time.perf_counter() - start:.0f} s", flush=True)

    model = wordlm.build_lm(len(vocab), cfg)
    rows = wordlm.train_lm(model, train_ids, val_ids, params=cfg, seed=params.seed,
                           work_dir=STATE_DIR,
                           log=lambda line: print(f"pretrain_lm: {line}", flush=True))
    last = rows[-1]
    summary = {
        "val_perplexity": round(last["val_perplexity"], 3), "val_tokens": int(len(val_ids) - 1),
        "val_unknown_rate": round(unknown, 5), "train_tokens": int(last["tokens"]),
        "steps": int(last["step"]), "tokens_per_second": round(last["tokens"] / last["seconds"]),
        "vocabulary": len(vocab), "corpus_reviews": len(corpus),
        "corpus_tokens": int(len(train_ids) + len(val_ids)), "left_out": left_out,
        "seconds": round(time.perf_counter() - start)}
    with atomic_dir(OUT_DIR) as tmp:
        wordlm.save(tmp, model, vocab, {**summary, "corpus": cfg.corpus, "seed": params.seed,
                                        "params": cfg.model_dump()})
    _write_history(rows)
    write_json(METRICS, summary)
    print(f"pretrain_lm: validation perplexity {last['val_perplexity']:.1f} -> {OUT_DIR}/ in "
          f"{summary['seconds']} s")


if __name__ == "__main__":
    run(main)
