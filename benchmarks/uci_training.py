"""What the training benchmarks share: the UCI training split as the train stage sees it, and
epochs timed in turns.

bench_bucketing.py and bench_embedding.py each compare two ways of training the same network
(params.yaml's, or the train stage's with its tuned params); both read the split here and time
their two sides with :func:`take_turns`. bench_kernels.py reads the split here too and times
its sides (a user's own script among them) with :func:`take_turns`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any


@dataclass
class TrainingSplit:
    seed: int
    dataset: str                   # data.sentiment, e.g. "uci"
    kind: Any                      # the model's textrnn.catalog.Kind (build_network's first
                                   # argument)
    key: str                       # where params.yaml sets the model (for error messages)
    model_params: Any              # the model's params as params.yaml resolves them
    ids: Any                       # (n, longest) token ids, post-padded
    labels: Any                    # (n,) class indices
    classes: list[str]
    vocabulary_size: int
    tuned: bool = False            # model_params has best_params.json's params laid over


def training_split(model: str, *, vector_words: bool = False, tuned: bool = False) -> TrainingSplit:
    """data/split/sentiment/train.parquet vectorized with train.sentiment.vectorizer's params.

    ``model``: a neural model of params.yaml, by name (a kind such as ``lstm`` or a variant such
    as ``bilstm``), its params as params.yaml resolves them.
    ``vector_words``: the vocabulary also holds the word vectors' words, as the train stage's does
    when the model starts from them (needs models/embeddings); otherwise the split's words only.
    ``tuned``: the model's params are the train stage's, models/sentiment/<model>/best_params.json
    (written by the tune stage) laid over params.yaml's, when that file exists; otherwise
    params.yaml's alone. Rows are padded to the longest one of the split.
    """
    import pandas as pd

    from textrnn.catalog import load_spec
    from textrnn.config import load_params
    from textrnn.handoff import tuned_params
    from textrnn.paths import best_params_path
    from textrnn.sentiment.embeddings import for_model
    from textrnn.sentiment.models import encode_labels, extra_words
    from textrnn.sentiment.text import make_vectorizer, sequence_lengths, vectorize

    params = load_params("seed", "data", "train")
    spec = load_spec("sentiment", model)
    if not spec.kind.neural:   # these benchmarks time epochs: a scikit-learn model has none
        raise SystemExit(f"{model} is a {spec.kind.name} model: name a neural one (e.g. lstm)")
    model_params, was_tuned = spec.params, False
    if tuned:
        model_params, was_tuned, _ = tuned_params(model_params,
                                                  best_params_path("sentiment", model))
    vectorizer_params = params.train.sentiment.vectorizer[params.data.sentiment]
    vectors = for_model(model_params, spec.key) if vector_words else None
    train = pd.read_parquet("data/split/sentiment/train.parquet")
    classes = sorted(set(train.label))
    vectorizer = make_vectorizer(list(train.text), max_tokens=vectorizer_params.max_tokens,
                                 max_length=vectorizer_params.max_length,
                                 extra_words=extra_words(model_params, vectors))
    ids = vectorize(vectorizer, list(train.text))
    return TrainingSplit(seed=params.seed, dataset=params.data.sentiment, kind=spec.kind,
                         key=spec.key, model_params=model_params,
                         ids=ids[:, :sequence_lengths(ids).max()],
                         labels=encode_labels(list(train.label), classes, "train"),
                         classes=classes, vocabulary_size=vectorizer.vocabulary_size(),
                         tuned=was_tuned)


def take_turns(sides: dict[str, tuple[Any, Any]], epochs: int) -> dict[str, list[float]]:
    """``{name: (compiled network, data)}`` -> seconds of each timed epoch, per name.

    ``data``: a dataset, or a dict of ``model.fit`` keyword arguments (``{"x": ..., "y": ...,
    "batch_size": 32}``: arrays, as a user's own script fits them). One untimed epoch each
    first (tracing), then one epoch each in turn, ``epochs`` times, so that a slow moment of a
    shared machine hits every side alike. An epoch is timed from its start to its end (its
    batches and the dataset's iterator), not fit()'s set-up.
    """
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self, seconds: list[float]):
            super().__init__()
            self.seconds = seconds

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    fit_args = {name: data if isinstance(data, dict) else {"x": data, "shuffle": False}
                for name, (_, data) in sides.items()}   # a dataset comes shuffled as it is
    for name, (network, _) in sides.items():
        network.fit(**fit_args[name], epochs=1, verbose=0)
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(epochs):
        for name, (network, _) in sides.items():
            network.fit(**fit_args[name], epochs=1, verbose=0,
                        callbacks=[EpochTimer(seconds[name])])
    return seconds
