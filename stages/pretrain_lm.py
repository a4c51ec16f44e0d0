"""pretrain_lm: a word-level LSTM language model learned without labels from IMDb reviews, for the
``lm_lstm`` sentiment kind to fine-tune (ULMFiT-style; textrnn.wordlm).

-> models/lm/                  lm.keras, vocab.txt, meta.json (only meta.json with corpus none)
-> models/lm_state/            the training checkpoint (DVC persist): a killed run resumes from it
-> metrics/pretrain_lm.json    exact validation perplexity, budget, throughput, corpus sizes
-> plots/lm/history.csv        per evaluation: step, tokens, train_loss, val_perplexity, seconds
<- models/embeddings/          read only with pretrain.embedding_init: pretrained (the start of
                               the embedding, which is also the tied softmax's weights)

Corpus ``imdb``: the 50k labelled reviews (upstream train and test) and the 50k unlabelled ones
of the IMDb archive, fetched like any dataset (mirror or download); labels are never read. A
review that is the text of a sentiment val or test row (case and whitespace folded) is left out.
``pretrain.val_reviews`` reviews, drawn with the seed, are held out for the exact validation
perplexity; the vocabulary comes from the other reviews plus the sentiment train split's words.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from textrnn.config import load_params
from textrnn.errors import DataError, ParamsError, UserError
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
    if len(reviews) <= count:
        raise DataError(f"the corpus has {len(reviews)} reviews: too few to hold out "
                        f"pretrain.val_reviews = {count} and train on the rest")
    held = np.zeros(len(reviews), bool)
    held[np.random.default_rng(seed).choice(len(reviews), size=count, replace=False)] = True
    return ([text for text, out in zip(reviews, held, strict=True) if not out],
            [text for text, out in zip(reviews, held, strict=True) if out])


@dataclass(frozen=True)
class Corpus:
    """The encoded pretraining corpus: what the stage (and benchmarks/lm_options.py) train on."""

    vocab: list[str]
    train_ids: np.ndarray          # one int32 stream of token ids
    val_ids: np.ndarray
    train_reviews: int
    val_reviews: int
    left_out: int                  # the text of a sentiment val/test row
    unknown: float                 # share of val tokens outside the vocabulary

    @property
    def reviews(self) -> int:
        """Reviews kept (train + val)."""
        return self.train_reviews + self.val_reviews


def prepare(params: Any) -> Corpus:
    """Read the corpus ``params.pretrain.corpus`` names (not 'none'), hold out its validation
    reviews and encode both parts with the vocabulary built from the rest."""
    cfg = params.pretrain
    splits = {name: sentiment_split(name, ["text"]).text.tolist()
              for name in ("train", "val", "test")}

    from textrnn import wordlm
    from textrnn.sentiment.corpus import imdb_corpus

    texts, left_out = imdb_corpus(splits["val"] + splits["test"], unlabelled=True,
                                  timeout_s=params.fetch.timeout_s, retries=params.fetch.retries)
    train_texts, val_texts = _split_reviews(texts, cfg.val_reviews, params.seed)
    vocab = wordlm.build_vocabulary(train_texts, splits["train"], cfg.vocabulary)
    train_ids, val_ids = wordlm.encode(train_texts, vocab), wordlm.encode(val_texts, vocab)
    return Corpus(vocab, train_ids, val_ids, len(train_texts), len(val_texts), left_out,
                  float((val_ids == wordlm.UNK_ID).mean()))


def start_model(vocab: list[str], params: Any) -> Any:
    """The language model before training: seeded, its embedding from the embed stage's word
    vectors when ``pretrain.embedding_init`` is 'pretrained'."""
    from textrnn import wordlm
    from textrnn.seeding import seed_everything

    cfg = params.pretrain
    seed_everything(params.seed)
    model = wordlm.build_lm(len(vocab), cfg)
    from textrnn.sentiment import embeddings

    try:    # the vectors, after checking their dimension, when embedding_init asks for them
        vectors = embeddings.for_model(cfg, "pretrain")
    except ParamsError:
        raise                   # names pretrain.embedding_dim already
    except UserError as exc:    # none saved
        raise UserError(f"pretrain.embedding_init is 'pretrained': {exc} (or set "
                        "pretrain.embedding_init: random)") from None
    if vectors is not None:
        covered = wordlm.init_embedding(model, vocab, vectors, norm=cfg.pretrained_norm,
                                        seed=params.seed)
        print(f"pretrain_lm: the embedding starts from the embed stage's word vectors "
              f"({covered:.1%} of the vocabulary has one)", flush=True)
    return model


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
    corpus = prepare(params)
    vocab, train_ids, val_ids = corpus.vocab, corpus.train_ids, corpus.val_ids
    from textrnn import wordlm

    print(f"pretrain_lm: {corpus.reviews} IMDb reviews ({corpus.left_out} left out: the "
          f"text of a sentiment val/test row): {corpus.train_reviews} train "
          f"({len(train_ids):,} tokens), {corpus.val_reviews} val ({len(val_ids):,} tokens, "
          f"{corpus.unknown:.2%} unknown)\n"
          f"pretrain_lm: vocabulary {len(vocab):,} words (the {cfg.vocabulary:,} most frequent "
          f"+ the sentiment train split's others); {wordlm.budget_steps(cfg)} steps of "
          f"{cfg.batch_size} x {cfg.sequence_length} tokens, "
          + (f"sampled softmax of {cfg.sampled}" if cfg.sampled else "full softmax")
          + f"; corpus read and encoded in {time.perf_counter() - start:.0f} s", flush=True)
    model = start_model(vocab, params)
    rows = wordlm.train_lm(model, train_ids, val_ids, params=cfg, seed=params.seed,
                           work_dir=STATE_DIR,
                           log=lambda line: print(f"pretrain_lm: {line}", flush=True))
    last = rows[-1]
    summary = {
        "val_perplexity": round(last["val_perplexity"], 3), "val_tokens": int(len(val_ids) - 1),
        "val_unknown_rate": round(corpus.unknown, 5), "train_tokens": int(last["tokens"]),
        "steps": int(last["step"]), "tokens_per_second": round(last["tokens"] / last["seconds"]),
        "vocabulary": len(vocab), "corpus_reviews": corpus.reviews,
        "corpus_tokens": int(len(train_ids) + len(val_ids)), "left_out": corpus.left_out,
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
