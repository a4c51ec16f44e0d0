"""LSTM epoch time on the UCI training split: length-bucketed batches vs padding to the longest.

    .venv/bin/python benchmarks/bench_bucketing.py [--epochs 8] [--model lstm] [--params trained]

Needs data/split/sentiment/train.parquet (`dvc repro split@sentiment`). ``--params trained`` (the
default) times the network the train stage fits: the model as params.yaml resolves it, with the
tune stage's models/sentiment/<model>/best_params.json laid over it (the UCI LSTM: 128 units
instead of 64), and the train stage's vocabulary (with the word vectors' words; needs
models/embeddings). ``--params defaults`` times params.yaml's own params on the split's words.
``--model`` is any neural sentiment model of params.yaml, a kind or a variant (``bilstm``).
Either way the vectorizer is the selected dataset's. Each pipeline trains the same fresh
network; after one untimed epoch each (tracing), the two take turns, one epoch each, ``--epochs``
times, so that a slow moment of a shared machine hits both alike. The figure is the median epoch
of each. Prints samples/s, the speed-up and the share of computed timesteps that hold real
tokens.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    from summary import emit

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=8, help="timed epochs per pipeline")
    parser.add_argument("--model", default="lstm",
                        help="a neural sentiment model of params.yaml (lstm, bilstm ...)")
    parser.add_argument("--params", choices=("trained", "defaults"), default="trained",
                        help="trained: the train stage's network (tuned params, its vocabulary); "
                             "defaults: params.yaml's params alone")
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")

    import numpy as np
    from uci_training import take_turns, training_split

    from textrnn.seeding import seed_everything
    from textrnn.sentiment.batching import bucketed_dataset, padded_dataset, real_token_share
    from textrnn.sentiment.models import build_network
    from textrnn.sentiment.text import sequence_lengths
    from textrnn.training import compile_model

    trained = args.params == "trained"
    split = training_split(args.model, vector_words=trained, tuned=trained)
    ids, labels, model_params = split.ids, split.labels, split.model_params
    network_name = (f"{args.model} {model_params.units} units, "
                    + ("tuned" if split.tuned else "params.yaml"))
    batch = model_params.batch_size
    pipelines = {
        "padded": padded_dataset(ids, labels, batch_size=batch, shuffle=True, seed=split.seed),
        "bucketed": bucketed_dataset(ids, labels, batch_size=batch, shuffle=True, seed=split.seed),
    }
    print(f"{network_name} on {split.dataset} train: {len(ids)} texts, batch {batch}, "
          f"vocabulary {split.vocabulary_size:,}, longest {ids.shape[1]} tokens, "
          f"mean {sequence_lengths(ids).mean():.1f}")
    sides = {}
    for name, ds in pipelines.items():
        seed_everything(split.seed)
        network = build_network(split.kind, model_params, vocab_size=split.vocabulary_size,
                                n_classes=len(split.classes), key=split.key)
        compile_model(network, model_params, loss="sparse_categorical_crossentropy",
                      steps_per_execution=model_params.steps_per_execution)
        sides[name] = (network, ds)
    seconds = take_turns(sides, args.epochs)
    rates, shares = {}, {}
    for name, ds in pipelines.items():
        epoch_s = float(np.median(seconds[name]))
        rates[name] = len(ids) / epoch_s
        shares[name] = real_token_share(ds)
        print(f"{name:>9}: {epoch_s:6.3f} s/epoch (median of {args.epochs}; "
              f"{min(seconds[name]):.3f}-{max(seconds[name]):.3f})  {rates[name]:8.0f} samples/s  "
              f"real-token share {shares[name]:.3f}")
    ratio = rates["bucketed"] / rates["padded"]
    print(f"speed-up bucketed / padded: {ratio:.2f}x")
    emit([{"benchmark": "training throughput", "what": f"{network_name}: samples/s, bucketed",
           "value": rates["bucketed"], "unit": "samples/s", "naive": rates["padded"],
           "ratio": ratio, "target": ">= 4x padding to the longest"},
          {"benchmark": "training throughput",
           "what": f"{network_name}: real-token share, bucketed",
           "value": shares["bucketed"], "unit": "", "naive": shares["padded"], "ratio": None,
           "target": ">= 0.9"}])


if __name__ == "__main__":
    main()
