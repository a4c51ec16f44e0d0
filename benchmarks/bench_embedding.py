"""LSTM epoch time on the UCI training split: an embedding that reads only the batch's rows vs
Keras' Embedding, at the vocabulary size the train stage uses.

    .venv/bin/python benchmarks/bench_embedding.py [--epochs 8] [--model lstm]

Needs data/split/sentiment/train.parquet and, when the model starts from word vectors,
models/embeddings (`dvc repro embed`). The vocabulary is the train stage's: the training split's
words plus, with ``vocabulary_from_vectors``, the vectors' words (UCI: 30,654 rows). Both networks
are ``--model`` as params.yaml resolves it (untuned; a kind, or a variant such as ``bilstm``),
trained on the same bucketed batches; they differ only in the embedding layer (RowEmbedding vs
``keras.layers.Embedding``). After one untimed epoch each, they take turns, one epoch each,
``--epochs`` times; the figure is the median epoch of each.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    from summary import emit

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=8, help="timed epochs per network")
    parser.add_argument("--model", default="lstm",
                        help="a neural sentiment model of params.yaml (lstm, bilstm ...)")
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")

    import keras
    import numpy as np
    from uci_training import take_turns, training_split

    from textrnn.layers import RowEmbedding
    from textrnn.seeding import seed_everything
    from textrnn.sentiment.batching import bucketed_dataset
    from textrnn.sentiment.models import build_network
    from textrnn.training import compile_model

    split = training_split(args.model, vector_words=True)
    model_params = split.model_params
    ds = bucketed_dataset(split.ids, split.labels, batch_size=model_params.batch_size, shuffle=True,
                          seed=split.seed)

    def keras_embedding(layer):
        if isinstance(layer, RowEmbedding):
            return keras.layers.Embedding.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    print(f"{args.model} on {split.dataset} train: {len(split.ids)} texts, vocabulary "
          f"{split.vocabulary_size:,} x {model_params.embedding_dim}, "
          f"batch {model_params.batch_size}, optimizer {model_params.optimizer}")
    sides = {}
    for name in ("rows only", "keras"):
        seed_everything(split.seed)
        network = build_network(split.kind, model_params, vocab_size=split.vocabulary_size,
                                n_classes=len(split.classes), key=split.key)
        if name == "keras":
            network = keras.models.clone_model(network, clone_function=keras_embedding)
        compile_model(network, model_params, loss="sparse_categorical_crossentropy",
                      steps_per_execution=model_params.steps_per_execution)
        sides[name] = (network, ds)
    seconds = take_turns(sides, args.epochs)
    rates = {}
    for name in sides:
        epoch_s = float(np.median(seconds[name]))
        rates[name] = len(split.ids) / epoch_s
        print(f"{name:>9}: {epoch_s:6.3f} s/epoch (median of {args.epochs}; "
              f"{min(seconds[name]):.3f}-{max(seconds[name]):.3f})  {rates[name]:8.0f} samples/s")
    ratio = rates["rows only"] / rates["keras"]
    print(f"speed-up rows-only read / keras.layers.Embedding: {ratio:.2f}x")
    emit([{"benchmark": "training throughput",
           "what": f"{args.model} samples/s, embedding reads the batch's rows "
                   f"({split.vocabulary_size:,}-word vocabulary)",
           "value": rates["rows only"], "unit": "samples/s", "naive": rates["keras"],
           "ratio": ratio, "target": "(no target; naive: keras.layers.Embedding)"}])


if __name__ == "__main__":
    main()
