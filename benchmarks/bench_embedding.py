"""LSTM epoch time on the UCI training split: an embedding that reads only the batch's rows vs
Keras' Embedding, at the vocabulary size the train stage uses.

    .venv/bin/python benchmarks/bench_embedding.py [--epochs 8] [--model lstm]

Needs data/split/sentiment/train.parquet and, when the model starts from word vectors,
models/embeddings (`dvc repro embed`). The vocabulary is the train stage's: the training split's
words plus, with ``vocabulary_from_vectors``, the vectors' words (UCI: 30,654 rows). Both networks
are the default one of params.yaml, trained on the same bucketed batches; they differ only in the
embedding layer (RowEmbedding vs ``keras.layers.Embedding``). After one untimed epoch each, they
take turns, one one-epoch ``fit`` each, ``--epochs`` times; the figure is the median of each.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    from summary import emit

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=8, help="timed epochs per network")
    parser.add_argument("--model", default="lstm", help="a neural sentiment model name")
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")

    import keras
    import numpy as np
    import pandas as pd

    from textrnn.batching import bucketed_dataset
    from textrnn.config import load_params
    from textrnn.embeddings import for_model
    from textrnn.models.layers import RowEmbedding
    from textrnn.models.sentiment import build_network, encode_labels, extra_words
    from textrnn.seeding import seed_everything
    from textrnn.text import make_vectorizer, vectorize
    from textrnn.training import compile_model

    params = load_params("seed", "data", "train")
    model_params = getattr(params.train.sentiment, args.model)
    vectorizer_params = params.train.sentiment.vectorizer[params.data.sentiment]
    vectors = for_model(model_params, f"train.sentiment.{args.model}")
    train = pd.read_parquet("data/split/sentiment/train.parquet")
    classes = sorted(set(train.label))
    vectorizer = make_vectorizer(list(train.text), max_tokens=vectorizer_params.max_tokens,
                                 max_length=vectorizer_params.max_length,
                                 extra_words=extra_words(model_params, vectors))
    ds = bucketed_dataset(vectorize(vectorizer, list(train.text)),
                          encode_labels(list(train.label), classes, "train"),
                          batch_size=model_params.batch_size, shuffle=True, seed=params.seed)

    def keras_embedding(layer):
        if isinstance(layer, RowEmbedding):
            return keras.layers.Embedding.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    print(f"{args.model} on {params.data.sentiment} train: {len(train)} texts, vocabulary "
          f"{vectorizer.vocabulary_size():,} x {model_params.embedding_dim}, "
          f"batch {model_params.batch_size}, optimizer {model_params.optimizer}")
    networks, seconds = {}, {}
    for name in ("rows only", "keras"):
        seed_everything(params.seed)
        network = build_network(args.model, model_params, vocab_size=vectorizer.vocabulary_size(),
                                n_classes=len(classes))
        if name == "keras":
            network = keras.models.clone_model(network, clone_function=keras_embedding)
        compile_model(network, model_params, loss="sparse_categorical_crossentropy",
                      steps_per_execution=model_params.steps_per_execution)
        network.fit(ds, epochs=1, verbose=0)          # tracing: not timed
        networks[name], seconds[name] = network, []
    for _ in range(args.epochs):                      # take turns: the same machine for both
        for name, network in networks.items():
            start = time.perf_counter()
            network.fit(ds, epochs=1, verbose=0)
            seconds[name].append(time.perf_counter() - start)
    rates = {}
    for name in networks:
        epoch_s = float(np.median(seconds[name]))
        rates[name] = len(train) / epoch_s
        print(f"{name:>9}: {epoch_s:6.3f} s/epoch (median of {args.epochs}; "
              f"{min(seconds[name]):.3f}-{max(seconds[name]):.3f})  {rates[name]:8.0f} samples/s")
    ratio = rates["rows only"] / rates["keras"]
    print(f"speed-up rows-only read / keras.layers.Embedding: {ratio:.2f}x")
    emit([{"benchmark": "training throughput",
           "what": f"{args.model} samples/s, embedding reads the batch's rows "
                   f"({vectorizer.vocabulary_size():,}-word vocabulary)",
           "value": rates["rows only"], "unit": "samples/s", "naive": rates["keras"],
           "ratio": ratio, "target": "(no target; naive: keras.layers.Embedding)"}])


if __name__ == "__main__":
    main()
