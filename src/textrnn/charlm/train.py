"""Character-level language modelling: vocabulary, training windows, training, exact perplexity.

- The vocabulary is built from the training split only; index 0 is the unknown-character
  token (:data:`UNKNOWN`), which stands for every character that training never saw.
- Training windows are sequence-to-sequence: a window of ``T`` characters is the input and the
  same window shifted by one character is the target, so all ``T`` positions are predicted.
  Targets are sparse int ids; no one-hot tensor of the corpus is ever built.
- Perplexity is exact: ``exp(total negative log-likelihood / number of predicted characters)``
  over every character of a split (all but the first, which has no context), with the
  recurrent state carried across chunks, not an average of per-batch perplexities.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from textrnn import model_files, training
from textrnn.charlm.model import state_model
from textrnn.config import CharlmNeuralParams
from textrnn.errors import DataError, UserError
from textrnn.io import write_json

log = logging.getLogger(__name__)

UNKNOWN = ""            # vocab[0]: no real character equals the empty string
MODEL_FILE = "model.keras"
VOCAB_FILE = "vocab.json"
META_FILE = model_files.META_FILE


# ----------------------------------------------------------------------------- vocabulary


def build_vocab(train_text: str) -> list[str]:
    """``[UNKNOWN, *sorted distinct characters of train_text]``."""
    if not train_text:
        raise DataError("the training text is empty: cannot build a character vocabulary")
    return [UNKNOWN, *sorted(set(train_text))]


def encode(text: str, vocab: Sequence[str]) -> np.ndarray:
    """Characters -> int32 ids ``(len(text),)``; a character not in ``vocab`` becomes 0."""
    index = {char: i for i, char in enumerate(vocab) if i > 0}
    return np.fromiter((index.get(char, 0) for char in text), dtype=np.int32, count=len(text))


def decode(ids: Sequence[int] | np.ndarray, vocab: Sequence[str]) -> str:
    return "".join(vocab[int(i)] for i in ids)


# ----------------------------------------------------------------------------- windows


def _windows(ids: tf.Tensor, offset: tf.Tensor, length: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Non-overlapping windows from ``offset``: inputs and targets ``(n, length)`` each."""
    n = (tf.shape(ids, out_type=tf.int64)[0] - 1 - offset) // length
    piece = ids[offset:offset + n * length + 1]
    return tf.reshape(piece[:-1], (n, length)), tf.reshape(piece[1:], (n, length))


def train_dataset(ids: np.ndarray, *, sequence_length: int, batch_size: int, seed: int,
                  epoch: tf.Variable, steps_per_epoch: int = 0) -> tf.data.Dataset:
    """One epoch = one pass over ``ids`` in non-overlapping windows of ``sequence_length``, or
    its first ``steps_per_epoch`` batches when that is > 0 (shorter epochs).

    Each epoch starts at a random offset in ``[0, sequence_length)`` (so window edges move from
    epoch to epoch) and shuffles its windows; both are drawn from ``(seed, epoch)``, read from
    the int64 variable ``epoch`` each time the dataset is iterated (:class:`EpochCounter` sets
    it), so epoch k sees the same batches in every run, resumed or not. Batches are ``(x, y)``,
    both int32 ``(batch, time)``.
    """
    usable = (len(ids) - sequence_length) // sequence_length
    if usable < batch_size:
        raise DataError(f"the training text ({len(ids)} characters) is too short for one batch "
                        f"of {batch_size} windows of {sequence_length} characters")
    ids_t = tf.constant(ids, dtype=tf.int32)

    def one_pass(epoch_now: tf.Tensor) -> tf.data.Dataset:
        pass_seed = tf.stack([epoch_now, tf.constant(seed, tf.int64)])
        offset = tf.random.stateless_uniform([], pass_seed, maxval=sequence_length, dtype=tf.int64)
        x, y = _windows(ids_t, offset, sequence_length)
        order = tf.random.experimental.stateless_shuffle(tf.range(tf.shape(x)[0]), pass_seed)
        return tf.data.Dataset.from_tensor_slices((tf.gather(x, order), tf.gather(y, order)))

    current_epoch = tf.data.Dataset.from_tensors(0).map(lambda _: epoch.read_value())
    batches = usable // batch_size       # the same count for every offset: a known epoch length
    if steps_per_epoch > 0:
        batches = min(batches, steps_per_epoch)
    return (current_epoch.flat_map(one_pass)
            .batch(batch_size, drop_remainder=True)   # one shape: one trace of the train step
            .take(batches)
            .apply(tf.data.experimental.assert_cardinality(batches))
            .prefetch(tf.data.AUTOTUNE))


def eval_dataset(ids: np.ndarray, *, sequence_length: int, batch_size: int) -> tf.data.Dataset:
    """The windows of ``ids`` in order, from offset 0, for the per-epoch validation loss."""
    if len(ids) <= sequence_length:
        raise DataError(f"the validation text ({len(ids)} characters) is shorter than one "
                        f"window of {sequence_length} characters")
    x, y = _windows(tf.constant(ids, dtype=tf.int32), tf.constant(0, tf.int64), sequence_length)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


class EpochCounter(keras.callbacks.Callback):
    """Tells :func:`train_dataset` which epoch is starting (Keras iterates it afresh after)."""

    def __init__(self) -> None:
        super().__init__()
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="data_epoch")

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch.assign(epoch)


# ----------------------------------------------------------------------------- training


def fit_model(
    kind: Any, params: CharlmNeuralParams, *, vocab_size: int, train_ids: np.ndarray,
    val_ids: np.ndarray, sequence_length: int, seed: int, work_dir: Path,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (), verbose: int = 2,
) -> tuple[keras.Model, dict[str, list[float]]]:
    """Build, compile and fit a model of ``kind`` (a charlm kind of :mod:`textrnn.catalog`);
    returns the model (best epoch) and its history.

    The history gains ``perplexity`` and ``val_perplexity`` (exp of the mean loss per
    character over that epoch's windows; the exact figure is :func:`exact_perplexity`).
    """
    model = kind.build(params, vocab_size=vocab_size)
    training.compile_model(model, params,
                           loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    counter = EpochCounter()
    train_ds = train_dataset(train_ids, sequence_length=sequence_length,
                             batch_size=params.batch_size, seed=seed, epoch=counter.epoch,
                             steps_per_epoch=params.steps_per_epoch)
    val_ds = eval_dataset(val_ids, sequence_length=sequence_length, batch_size=params.batch_size)
    history = training.fit(model, train_ds, val_ds, epochs=params.epochs,
                           patience=params.patience, work_dir=work_dir,
                           extra_callbacks=[counter, *extra_callbacks], verbose=verbose,
                           derived=perplexities)
    return model, history


def perplexities(row: dict[str, float]) -> dict[str, float]:
    """``perplexity`` and ``val_perplexity`` of an epoch's row: exp of its mean losses per
    character (part of each row, so they reach MLflow as the epoch ends)."""
    return {key.replace("loss", "perplexity"): math.exp(row[key])
            for key in ("loss", "val_loss") if key in row}


# ----------------------------------------------------------------------------- exact perplexity


class StateFunction:
    """The trained model as one compiled function ``(ids, states) -> (logits, new_states)``.

    ``ids`` is int32 ``(batch, time)`` with any batch and time (one trace serves them all);
    states are float32 ``(batch, size)`` per recurrent state, zeros to start a text.
    """

    def __init__(self, model: keras.Model):
        self.network, self.state_sizes = state_model(model)
        self.vocab_size = int(model.output_shape[-1])
        signature = [tf.TensorSpec((None, None), tf.int32),
                     [tf.TensorSpec((None, size), tf.float32) for size in self.state_sizes]]
        self._call = tf.function(self._forward, input_signature=signature, reduce_retracing=True)

    def _forward(self, ids: tf.Tensor, states: list[tf.Tensor]) -> tuple[tf.Tensor, list]:
        outputs = self.network([ids, *states], training=False)
        return outputs[0], list(outputs[1:])

    def zero_states(self, batch: int) -> list[tf.Tensor]:
        return [tf.zeros((batch, size), tf.float32) for size in self.state_sizes]

    def __call__(self, ids: Any, states: Sequence[Any]) -> tuple[tf.Tensor, list[tf.Tensor]]:
        return self._call(tf.convert_to_tensor(ids, tf.int32), list(states))


def total_nll(function: StateFunction, ids: np.ndarray, *, streams: int = 32,
              chunk_length: int = 500) -> tuple[float, int]:
    """Summed negative log-likelihood (nats) of ``ids[1:]`` given the preceding characters.

    The text is cut into ``streams`` contiguous pieces scored side by side, each chunk by chunk
    with the state carried, so every character but the first of a piece sees all the text
    before it in its piece. Returns ``(total_nll, number_of_predicted_characters)``.
    """
    if len(ids) < 2:
        raise DataError(f"cannot score a text of {len(ids)} character(s): at least 2 are needed")
    inputs, targets = ids[:-1], ids[1:]
    count = len(targets)
    streams = max(1, min(streams, count))
    per_stream = -(-count // streams)
    pad = per_stream * streams - count

    def grid(values: np.ndarray) -> np.ndarray:
        return np.concatenate([values, np.zeros(pad, values.dtype)]).reshape(streams, per_stream)

    inputs, targets = grid(inputs), grid(targets)
    weights = grid(np.ones(count, np.float64))                    # padding scores nothing
    states = function.zero_states(streams)
    total = 0.0
    for start in range(0, per_stream, chunk_length):
        window = slice(start, start + chunk_length)
        logits, states = function(inputs[:, window], states)       # (streams, time, vocab)
        log_probs = tf.nn.log_softmax(logits, axis=-1).numpy().astype(np.float64)
        picked = np.take_along_axis(log_probs, targets[:, window, None], axis=-1)[..., 0]
        total -= float(np.sum(picked * weights[:, window]))
    return total, count


def exact_perplexity(function: StateFunction, ids: np.ndarray, **kwargs: Any) -> dict[str, float]:
    """``{'perplexity', 'bits_per_char', 'nll_per_char', 'characters'}`` over all of ``ids``."""
    total, count = total_nll(function, ids, **kwargs)
    per_char = total / count
    return {"perplexity": math.exp(per_char), "bits_per_char": per_char / math.log(2),
            "nll_per_char": per_char, "characters": count}


# ----------------------------------------------------------------------------- saved models


def save(directory: Path, model: keras.Model, vocab: Sequence[str], meta: dict[str, Any]) -> None:
    """Write ``model.keras``, ``vocab.json`` and ``meta.json`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    model.save(directory / MODEL_FILE)
    write_json(directory / VOCAB_FILE, list(vocab))
    write_json(directory / META_FILE, meta)


def load(directory: str | Path) -> tuple[keras.Model, list[str], dict[str, Any]]:
    """Read back what :func:`save` wrote: ``(model, vocab, meta)``."""
    directory = Path(directory)
    for name in (MODEL_FILE, VOCAB_FILE):   # meta.json: checked by model_files.read_meta
        if not (directory / name).is_file():
            raise UserError(f"{directory / name} is missing: run `dvc repro train_charlm` first")
    meta = model_files.read_meta(directory, task="charlm").as_dict()
    model = keras.saving.load_model(directory / MODEL_FILE, safe_mode=True)
    vocab = json.loads((directory / VOCAB_FILE).read_text(encoding="utf-8"))
    if not vocab or vocab[0] != UNKNOWN or int(model.output_shape[-1]) != len(vocab):
        raise UserError(f"{directory / VOCAB_FILE} does not match {directory / MODEL_FILE}: "
                        f"{len(vocab)} characters for {model.output_shape[-1]} outputs")
    return model, vocab, meta
