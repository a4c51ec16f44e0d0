"""Our training beside what users would write, and our Keras kernel beside the fused one.

    .venv/bin/python benchmarks/bench_kernels.py [--epochs 5] [--steps 20] [--quick]

Needs data/split/sentiment/train.parquet, data/split/charlm/train.txt and models/embeddings
(`make repro`). Each part runs its sides in this one process, taking turns (one untimed epoch
each for tracing, then one epoch each, ``--epochs`` times: a slow moment of a shared machine
hits every side alike); a figure is the median timed epoch of its side. Every network of ours
is built from params.yaml through the project's config, with the ``implementation`` key of
``train.<task>.defaults.network`` set to ``keras`` (Keras' LSTM: a graph loop over time on
CPU) or ``fused`` (textrnn.layers.FusedLSTM: TensorFlow's fused BlockLSTM kernel, the whole
sequence in one op); each row names the kernel its recurrent layer actually ran.

1. Sentiment LSTM, one epoch of the UCI training split:
   - the student's way: TextVectorization adapted on the split, every sentence pre-padded with
     ``pad_sequences`` to the longest one, no mask, ``Embedding(vocabulary, 100)``,
     ``LSTM(units)``, a softmax Dense, Adam, ``model.fit(x, y, batch_size=32)``;
   - ours: the network, vocabulary (word vectors' words included), optimizer and
     length-bucketed batches the train stage uses for the ``lstm`` model (units: its tuned
     value from best_params.json when there is one), with each implementation, at that size
     and at 32 and 128 units.
2. Language-model training on the Quijote training text, LSTM(256):
   - the seed notebook's way: one-hot windows of 100 characters taken with step 1 (inputs
     ``(n, 100, vocabulary)`` float32), each predicting the one character after it (one-hot),
     ``LSTM(256)`` + softmax Dense, categorical cross-entropy, Adam, batch 64, ``model.fit``.
     Its corpus is the first 200,000 characters (the memory its arrays would take is printed);
     only the windows of the timed batches are built, as the cost of a batch does not depend
     on how many there are;
   - ours: params.yaml's ``lstm`` language model, the charlm training windows (ids, every
     position of a window a target), ``--steps`` batches per epoch, with each implementation.
   The comparable figure is predicted characters per second: a notebook window predicts one
   character, one of ours predicts all of its 100. Windows per second are printed too.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

IMPLEMENTATIONS = ("keras", "fused")
STUDENT_BATCH = 32
NOTEBOOK_TEXT = 200_000        # characters of the training text the seed notebook loads
NOTEBOOK_WINDOW = 100
NOTEBOOK_BATCH = 64
NOTEBOOK_UNITS = 256


def load_line() -> str:
    """The load averages, printed beside the figures: a busy shared machine shows."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min) on {os.cpu_count()} CPUs"


def with_params(params: Any, **changes: Any) -> Any:
    """``params`` (a params class of textrnn.config) with ``changes``, validated again like a
    value of params.yaml (an unknown key or a bad value is an error, as it is there)."""
    return type(params).model_validate({**params.model_dump(), **changes})


def kernels(network: Any) -> str:
    """What ``network``'s recurrent layers run here (``keras loop``, ``fused BlockLSTM``,
    ``cudnn``): a fused side that fell back to Keras' loop shows in the table."""
    from textrnn.layers import recurrent_kernels

    return ", ".join(sorted(set(recurrent_kernels(network).values())))


def ratio_text(speed_ups: dict[str, float]) -> str:
    """``{"student": 4.1, "keras": 0.9}`` -> ``"4.10x student, 0.90x keras"`` (times as fast)."""
    return ", ".join(f"{ratio:.2f}x {other}" for other, ratio in speed_ups.items())


def median_range(seconds: list[float]) -> tuple[float, float, float]:
    """``(median, fastest, slowest)`` of a side's timed epochs."""
    import numpy as np

    return float(np.median(seconds)), min(seconds), max(seconds)


# ----------------------------------------------------------------------------- sentiment


def student_sentiment(texts: list[str], labels: Any, *, units: int,
                      n_classes: int) -> tuple[Any, dict[str, Any], int, int]:
    """The LSTM as a student writes it: ``(network, fit kwargs, vocabulary size, longest)``."""
    import keras
    import numpy as np

    vectorizer = keras.layers.TextVectorization(ragged=True)
    vectorizer.adapt(np.asarray(texts, dtype=object))
    sequences = vectorizer(np.asarray(texts, dtype=object)).to_list()
    x = keras.utils.pad_sequences(sequences)                   # pre-padded to the longest
    vocabulary = vectorizer.vocabulary_size()
    network = keras.Sequential([
        keras.Input(shape=(x.shape[1],), dtype="int32"),
        keras.layers.Embedding(vocabulary, 100),
        keras.layers.LSTM(units),
        keras.layers.Dense(n_classes, activation="softmax"),
    ])
    network.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                    metrics=["accuracy"])
    return network, {"x": x, "y": labels, "batch_size": STUDENT_BATCH}, vocabulary, x.shape[1]


def our_sentiment(split: Any, params: Any) -> tuple[Any, Any]:
    """``(network, dataset)`` as KerasSentiment.fit makes them (no validation pass)."""
    from textrnn.seeding import seed_everything
    from textrnn.sentiment.batching import bucketed_dataset
    from textrnn.sentiment.models import build_network
    from textrnn.training import compile_model

    seed_everything(split.seed)
    network = build_network(split.kind, params, vocab_size=split.vocabulary_size,
                            n_classes=len(split.classes), key=split.key)
    compile_model(network, params, loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  steps_per_execution=params.steps_per_execution)
    ds = bucketed_dataset(split.ids, split.labels, batch_size=params.batch_size, shuffle=True,
                          seed=split.seed)
    return network, ds


def sentiment_part(epochs: int) -> tuple[list[list[str]], list[dict]]:
    """Timed sentiment epochs: table lines and summary rows."""
    import pandas as pd
    from uci_training import take_turns, training_split

    from textrnn.seeding import seed_everything

    split = training_split("lstm", vector_words=True, tuned=True)
    tuned_units = split.model_params.units
    n = len(split.ids)
    train = pd.read_parquet("data/split/sentiment/train.parquet")
    seed_everything(split.seed)
    student, student_fit, student_vocabulary, longest = student_sentiment(
        list(train.text), split.labels, units=tuned_units, n_classes=len(split.classes))
    print(f"sentiment: {split.dataset} train, {n} texts, {len(split.classes)} classes; "
          f"student: vocabulary {student_vocabulary:,}, padded to {longest} tokens, batch "
          f"{STUDENT_BATCH}, adam; ours: vocabulary {split.vocabulary_size:,}, bucketed, batch "
          f"{split.model_params.batch_size}, {split.model_params.optimizer}, "
          f"{split.model_params.steps_per_execution} steps per execution; units "
          f"{tuned_units} ({'tuned' if split.tuned else 'params.yaml'})", flush=True)
    lines, rows = [], []
    for units in sorted({tuned_units, 32, 128}, key=lambda u: (u != tuned_units, u)):
        sides: dict[str, tuple[Any, Any]] = {}
        if units == tuned_units:
            sides["student"] = (student, student_fit)
        for implementation in IMPLEMENTATIONS:
            params = with_params(split.model_params, units=units, implementation=implementation)
            sides[implementation] = our_sentiment(split, params)
        seconds = take_turns(sides, epochs)
        medians = {name: median_range(values)[0] for name, values in seconds.items()}
        for name, values in seconds.items():
            middle, low, high = median_range(values)
            label = ("student: pad to longest, Keras LSTM, adam" if name == "student"
                     else f"ours, implementation: {name}") + f" [{kernels(sides[name][0])}]"
            speed_ups = {other: medians[other] / middle for other in ("student", "keras")
                         if other in medians and other != name and name != "student"}
            lines.append([f"sentiment LSTM {units} units", label,
                          f"{middle:.3f} s/epoch ({low:.3f}-{high:.3f})",
                          f"{n / middle:,.0f} samples/s", ratio_text(speed_ups)])
        what = f"LSTM epoch on {split.dataset} train, {units} units"
        if "student" in medians:
            rows += [{"benchmark": "kernels", "what": f"{what}: ours ({name}) vs student",
                      "value": medians[name], "unit": "s/epoch", "naive": medians["student"],
                      "ratio": medians["student"] / medians[name],
                      "target": ">= 6x the student's way"} for name in IMPLEMENTATIONS]
        rows.append({"benchmark": "kernels", "what": f"{what}: fused vs keras kernel",
                     "value": medians["fused"], "unit": "s/epoch", "naive": medians["keras"],
                     "ratio": medians["keras"] / medians["fused"], "target": "reported"})
    return lines, rows


# ----------------------------------------------------------------------------- language model


def notebook_charlm(text: str, windows: int) -> tuple[Any, dict[str, Any], int]:
    """The seed notebook's model on its one-hot windows of ``text``, the first ``windows`` only:
    ``(network, fit kwargs, vocabulary size)``."""
    import keras
    import numpy as np

    chars = sorted(set(text))
    index = {char: i for i, char in enumerate(chars)}
    x = np.zeros((windows, NOTEBOOK_WINDOW, len(chars)), dtype="float32")
    y = np.zeros((windows, len(chars)), dtype="float32")
    for i in range(windows):                                  # step 1: a window per character
        for t, char in enumerate(text[i:i + NOTEBOOK_WINDOW]):
            x[i, t, index[char]] = 1.0
        y[i, index[text[i + NOTEBOOK_WINDOW]]] = 1.0
    network = keras.Sequential([
        keras.Input(shape=(NOTEBOOK_WINDOW, len(chars))),
        keras.layers.LSTM(NOTEBOOK_UNITS),
        keras.layers.Dense(len(chars), activation="softmax"),
    ])
    network.compile(optimizer="adam", loss="categorical_crossentropy")
    return network, {"x": x, "y": y, "batch_size": NOTEBOOK_BATCH}, len(chars)


def our_charlm(kind: Any, params: Any, ids: Any, *, vocab_size: int, sequence_length: int,
               seed: int, steps: int) -> tuple[Any, Any]:
    """``(model, dataset of ``steps`` batches)`` as textrnn.charlm.train.fit_model makes them
    (no validation pass)."""
    import keras
    import tensorflow as tf

    from textrnn.charlm.train import train_dataset
    from textrnn.seeding import seed_everything
    from textrnn.training import compile_model

    seed_everything(seed)
    model = kind.build(params, vocab_size=vocab_size)
    compile_model(model, params, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ds = train_dataset(ids, sequence_length=sequence_length, batch_size=params.batch_size,
                       seed=seed, epoch=tf.Variable(0, dtype=tf.int64), steps_per_epoch=steps)
    return model, ds


def gigabytes(windows: int, vocabulary: int) -> float:
    """Memory of the notebook's float32 one-hot inputs and targets for ``windows`` windows."""
    return windows * (NOTEBOOK_WINDOW + 1) * vocabulary * 4 / 1e9


def charlm_part(epochs: int, steps: int) -> tuple[list[list[str]], list[dict]]:
    """Timed language-model epochs of ``steps`` batches: table lines and summary rows."""
    from uci_training import take_turns

    from textrnn.catalog import load_spec
    from textrnn.charlm.train import build_vocab, encode
    from textrnn.config import load_params
    from textrnn.seeding import seed_everything

    params = load_params("seed", "train")
    sequence_length = params.train.charlm.sequence_length
    spec = load_spec("charlm", "lstm")
    text = Path("data/split/charlm/train.txt").read_text(encoding="utf-8")
    vocab = build_vocab(text)
    ids = encode(text, vocab)
    seed_everything(params.seed)
    notebook_text = text[:NOTEBOOK_TEXT]
    notebook, notebook_fit, notebook_vocabulary = notebook_charlm(notebook_text,
                                                                  steps * NOTEBOOK_BATCH)
    print(f"language model: {len(text):,} training characters, vocabulary {len(vocab)}; "
          f"ours: {spec.params.units} units, embedding {spec.params.embedding_dim}, batch "
          f"{spec.params.batch_size} windows of {sequence_length}, {spec.params.optimizer}; "
          f"notebook: first {NOTEBOOK_TEXT:,} characters, vocabulary {notebook_vocabulary}, "
          f"one-hot inputs + targets "
          f"{gigabytes(NOTEBOOK_TEXT - NOTEBOOK_WINDOW, notebook_vocabulary):.1f} GB "
          f"(the whole training text: {gigabytes(len(text) - NOTEBOOK_WINDOW, len(vocab)):.0f} "
          f"GB); built here: the {steps * NOTEBOOK_BATCH:,} windows of {steps} batches, "
          f"{gigabytes(steps * NOTEBOOK_BATCH, notebook_vocabulary) * 1e3:.0f} MB", flush=True)
    sides: dict[str, tuple[Any, Any]] = {"notebook": (notebook, notebook_fit)}
    for implementation in IMPLEMENTATIONS:
        sides[implementation] = our_charlm(
            spec.kind, with_params(spec.params, implementation=implementation), ids,
            vocab_size=len(vocab), sequence_length=sequence_length, seed=params.seed,
            steps=steps)
    seconds = take_turns(sides, epochs)
    per_batch = {"notebook": (NOTEBOOK_BATCH, NOTEBOOK_BATCH)}   # (windows, predicted chars)
    per_batch.update({name: (spec.params.batch_size, spec.params.batch_size * sequence_length)
                      for name in IMPLEMENTATIONS})
    chars = {name: steps * per_batch[name][1] / median_range(values)[0]
             for name, values in seconds.items()}
    lines = []
    for name, values in seconds.items():
        middle, low, high = median_range(values)
        label = ("seed notebook: one-hot windows, step 1, batch 64" if name == "notebook"
                 else f"ours, implementation: {name}") + f" [{kernels(sides[name][0])}]"
        speed_ups = {other: chars[name] / chars[other] for other in ("notebook", "keras")
                     if other != name and name != "notebook"}
        lines.append([f"language model LSTM {NOTEBOOK_UNITS}", label,
                      f"{middle / steps * 1e3:.0f} ms/batch ({low / steps * 1e3:.0f}-"
                      f"{high / steps * 1e3:.0f})",
                      f"{steps * per_batch[name][0] / middle:,.0f} windows/s, "
                      f"{chars[name]:,.0f} predicted chars/s", ratio_text(speed_ups)])
    what = f"language-model training, LSTM {NOTEBOOK_UNITS}, predicted characters/s"
    rows = [{"benchmark": "kernels", "what": f"{what}: ours ({name}) vs seed notebook",
             "value": chars[name], "unit": "chars/s", "naive": chars["notebook"],
             "ratio": chars[name] / chars["notebook"], "target": "reported"}
            for name in IMPLEMENTATIONS]
    rows.append({"benchmark": "kernels", "what": f"{what}: fused vs keras kernel",
                 "value": chars["fused"], "unit": "chars/s", "naive": chars["keras"],
                 "ratio": chars["fused"] / chars["keras"], "target": ">= 1.4x today's (keras)"})
    return lines, rows


def main() -> None:
    from summary import emit

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=None,
                        help="timed epochs per side (default 5; --quick: 2)")
    parser.add_argument("--steps", type=int, default=None,
                        help="batches per language-model epoch (default 20; --quick: 5)")
    parser.add_argument("--quick", action="store_true", help="fewer epochs and batches")
    args = parser.parse_args()
    epochs = args.epochs or (2 if args.quick else 5)
    steps = args.steps or (5 if args.quick else 20)
    if epochs < 1 or steps < 1:
        parser.error("--epochs and --steps must be >= 1")

    print(load_line(), flush=True)
    sentiment_lines, sentiment_rows = sentiment_part(epochs)
    charlm_lines, charlm_rows = charlm_part(epochs, steps)
    print(f"\nmedian of {epochs} timed epochs per side, taken in turns after one untimed epoch "
          f"each; language-model epochs of {steps} batches; {load_line()}")
    print("| network | way | time | throughput | ratio |")
    print("|---|---|---:|---:|---|")
    for line in sentiment_lines + charlm_lines:
        print("| " + " | ".join(line) + " |")
    emit(sentiment_rows + charlm_rows)


if __name__ == "__main__":
    main()
