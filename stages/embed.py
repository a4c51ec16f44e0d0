"""embed: learn word vectors without labels (PPMI + SVD) for the sentiment networks to start from.

-> models/embeddings/            vectors.npy (words x dim, unit rows), words.txt, meta.json
-> metrics/embeddings.json       corpus size, vocabulary, coverage of the sentiment train split

Corpus ``imdb``: the 50k reviews of the IMDb archive, fetched like any dataset (mirror or
download), labels never read. Any review whose text is in the sentiment val or test split is left
out, so with ``data.sentiment: imdb`` (whose test split is IMDb's test set) no held-out text shapes
the vectors: the corpus is then the training split alone. ``embeddings.unlabelled: true`` adds
the archive's 50,000 unlabelled reviews (``train/unsup/``, never a labelled review; the IMDb
profile turns it on). Corpus ``none`` writes
only meta.json; models then need ``embedding_init: random``.
"""

from __future__ import annotations

import time
from pathlib import Path

from textrnn.config import load_params
from textrnn.handoff import sentiment_split
from textrnn.io import atomic_dir, write_json
from textrnn.stage import run

OUT_DIR = Path("models/embeddings")
PROBE_WORDS = ("good", "awful", "boring", "recommend", "disappointed")


def main() -> None:
    params = load_params("seed", "fetch", "embeddings")
    cfg = params.embeddings
    texts = {name: set(sentiment_split(name, ["text"]).text) for name in ("train", "val", "test")}
    held_out = texts["val"] | texts["test"]
    if cfg.corpus == "none":
        with atomic_dir(OUT_DIR) as tmp:
            write_json(tmp / "meta.json", {"corpus": "none"})
        write_json("metrics/embeddings.json", {"corpus": "none"})
        print("embed: embeddings.corpus is 'none': no word vectors")
        return

    from textrnn.sentiment import embeddings

    start = time.perf_counter()
    from textrnn.sentiment.corpus import imdb_corpus

    corpus, left_out = imdb_corpus(held_out, unlabelled=cfg.unlabelled,
                                   timeout_s=params.fetch.timeout_s, retries=params.fetch.retries)
    print(f"embed: {len(corpus)} IMDb reviews"
          + (" (the unlabelled ones included)" if cfg.unlabelled else "")
          + f" ({left_out} left out: in sentiment val/test)", flush=True)
    words, vectors = embeddings.learn(corpus, vocabulary=cfg.vocabulary, dim=cfg.dim,
                                      window=cfg.window, smoothing=cfg.smoothing, seed=params.seed)
    known = set(words)
    train_tokens = [word for text in texts["train"] for word in embeddings.tokens(text)]
    coverage = {
        "train_tokens": sum(word in known for word in train_tokens) / max(1, len(train_tokens)),
        "train_words": (len({w for w in train_tokens if w in known})
                        / max(1, len(set(train_tokens)))),
    }
    result = embeddings.WordVectors(words, vectors, {
        "corpus": cfg.corpus, "reviews": len(corpus),
        "tokens": sum(len(embeddings.tokens(text)) for text in corpus),
        "vocabulary": len(words), "dim": cfg.dim, "window": cfg.window,
        "smoothing": cfg.smoothing, "seed": params.seed})
    result.meta["neighbours"] = {word: result.neighbours(word) for word in PROBE_WORDS}
    with atomic_dir(OUT_DIR) as tmp:
        result.save(tmp)
    write_json("metrics/embeddings.json", {
        "corpus": cfg.corpus, "unlabelled": cfg.unlabelled,
        "reviews": result.meta["reviews"], "tokens": result.meta["tokens"],
        "vocabulary": len(words), "dim": cfg.dim,
        "coverage_train_tokens": round(coverage["train_tokens"], 4),
        "coverage_train_words": round(coverage["train_words"], 4)})
    for word, near in result.meta["neighbours"].items():
        print(f"embed: {word:>12} ~ {', '.join(near[:6])}")
    print(f"embed: {len(words)} words x {cfg.dim} -> {OUT_DIR}/ "
          f"(covers {coverage['train_tokens']:.1%} of the train split's tokens) "
          f"in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    run(main)
