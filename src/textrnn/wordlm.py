"""A word-level LSTM language model (ULMFiT-style pretraining): vocabulary, model, training with
a sampled softmax, exact perplexity, saved files.

- Words are :func:`textrnn.sentiment.text.tokens`, and a vocabulary is laid out like Keras'
  ``TextVectorization.get_vocabulary()`` (``""`` padding, ``"[UNK]"``, then words), so a
  vectorizer built with ``vocabulary=vocab[2:]`` gives the ids :func:`encode` gives.
- The model maps ids ``(batch, time)`` to projected hidden states ``(batch, time, embedding_dim)``;
  the softmax weights are the embedding matrix (tied) plus a bias held by
  :class:`textrnn.layers.TiedOutput`: :func:`logits` gives ``(batch, time, vocab)``.
- Training predicts every position of windows drawn at random offsets, with replacement, from
  ``(seed, step)``: batches, sampled candidates and dropout depend on nothing else, so a run
  resumed from a checkpoint ends with the weights of an uninterrupted one.
- Perplexity is exact: the full softmax over every token after the first, the LSTM state carried
  from chunk to chunk (as :func:`textrnn.charlm.train.total_nll` does for characters).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from textrnn import training
from textrnn.config import PretrainParams
from textrnn.errors import DataError, UserError
from textrnn.io import atomic_path, write_json
from textrnn.layers import TiedOutput
from textrnn.sentiment.text import tokens

PAD, UNK = "", "[UNK]"
UNK_ID = 1
MODEL_FILE, VOCAB_FILE, META_FILE = "lm.keras", "vocab.txt", "meta.json"
STATE_FILE = "state.npz"          # in train_lm's work_dir: the last checkpoint
OUTPUT_LAYER = "tied_output"
LOGIT_BUDGET = 1 << 25            # floats of full-softmax logits per scoring call (128 MB)


# ----------------------------------------------------------------------------- vocabulary


def _by_frequency(counts: Counter) -> list[str]:
    return sorted(counts, key=lambda word: (-counts[word], word))


def build_vocabulary(corpus_texts: Iterable[str], task_train_texts: Iterable[str],
                     size: int) -> list[str]:
    """``[PAD, UNK]``, the ``size`` most frequent corpus words, then the task's training words
    not yet in it (each part by frequency, ties alphabetical)."""
    corpus = Counter(word for text in corpus_texts for word in tokens(text))
    vocab = [PAD, UNK, *_by_frequency(corpus)[:size]]
    known = set(vocab)
    task = Counter(word for text in task_train_texts for word in tokens(text) if word not in known)
    return vocab + _by_frequency(task)


def encode(texts: Iterable[str], vocab: Sequence[str]) -> np.ndarray:
    """The texts' token ids, concatenated in order into one int32 stream; unknown words -> 1."""
    index = {word: i for i, word in enumerate(vocab) if i > 1}
    return np.fromiter((index.get(word, UNK_ID) for text in texts for word in tokens(text)),
                       dtype=np.int32)


# ----------------------------------------------------------------------------- model


def build_lm(vocab_size: int, params: Any) -> keras.Model:
    """Embedding -> ``params.layers`` LSTMs -> projection to ``embedding_dim``, dropout after the
    embedding and each LSTM. Outputs the projected states, not logits (see :func:`logits`)."""
    if vocab_size < 3:
        raise ValueError(f"vocab_size must be at least 3 (PAD, UNK, a word), got {vocab_size}")
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")              # (batch, time)
    # Every id is a real token (a stream has no padding): no mask.
    embedding = layers.Embedding(vocab_size, params.embedding_dim, name="embedding")
    x = layers.Dropout(params.dropout, name="embedding_dropout")(embedding(ids))
    for index in range(params.layers):
        x = layers.LSTM(params.units, return_sequences=True,
                        name=f"lm_lstm_{index + 1}")(x)                      # (batch, time, units)
        x = layers.Dropout(params.dropout, name=f"dropout_{index + 1}")(x)
    x = layers.Dense(params.embedding_dim, name="projection")(x)             # (batch, time, dim)
    x = TiedOutput(vocab_size, name=OUTPUT_LAYER)(x)                         # the same; holds bias
    return keras.Model(ids, x, name="word_lm")


def _tied(model: keras.Model) -> tuple[Any, Any]:
    """The softmax weights (vocab, dim) and bias (vocab,): the embedding matrix and its bias."""
    return model.get_layer("embedding").embeddings, model.get_layer(OUTPUT_LAYER).bias


def logits(model: keras.Model, outputs: Any) -> Any:
    """The model's outputs (batch, time, dim) -> full-vocabulary logits (batch, time, vocab)."""
    embeddings, _ = _tied(model)
    return model.get_layer(OUTPUT_LAYER).logits(outputs, embeddings)


# ----------------------------------------------------------------------------- exact perplexity


class PerplexityScorer:
    """``model`` as one compiled function over a chunk with explicit LSTM states, sharing the
    model's weights (built once, it follows training)."""

    def __init__(self, model: keras.Model):
        self.model = model
        ids = keras.Input(shape=(None,), dtype="int32")
        x = model.get_layer("embedding")(ids)
        inputs, outputs, self.sizes = [ids], [], []
        for layer in model.layers:
            if isinstance(layer, layers.LSTM):
                # RNN over the same cell: the same weights, and the final state comes out
                states = [keras.Input(shape=(layer.units,)) for _ in range(2)]
                x, *new = layers.RNN(layer.cell, return_sequences=True,
                                     return_state=True)(x, initial_state=states)
                inputs += states
                outputs += new
                self.sizes += [layer.units, layer.units]
        x = model.get_layer("projection")(x)
        self.network = keras.Model(inputs, [x, *outputs])
        signature = [tf.TensorSpec((None, None), tf.int32), tf.TensorSpec((None, None), tf.int32),
                     [tf.TensorSpec((None, size), tf.float32) for size in self.sizes]]
        self._nll = tf.function(self._chunk_nll, input_signature=signature)

    def _chunk_nll(self, ids: tf.Tensor, targets: tf.Tensor,
                   states: list[tf.Tensor]) -> tuple[tf.Tensor, list[tf.Tensor]]:
        hidden, *states = self.network([ids, *states], training=False)
        scores = logits(self.model, hidden)                             # (streams, time, vocab)
        picked = tf.gather(scores, targets, batch_dims=2)                    # (streams, time)
        return tf.reduce_logsumexp(scores, axis=-1) - picked, states

    def __call__(self, ids: np.ndarray, *, streams: int = 64,
                 chunk_length: int | None = None) -> float:
        """Perplexity of ``ids[1:]``; the stream is cut into ``streams`` contiguous pieces scored
        side by side, each token seeing every earlier token of its piece."""
        ids = np.asarray(ids, dtype=np.int32)
        if len(ids) < 2:
            raise DataError(f"cannot score {len(ids)} token(s): at least 2 are needed")
        count = len(ids) - 1
        streams = max(1, min(streams, count))
        per_stream = -(-count // streams)
        vocab = int(_tied(self.model)[0].shape[0])
        chunk_length = chunk_length or max(1, LOGIT_BUDGET // (streams * vocab))
        pad = per_stream * streams - count

        def grid(values: np.ndarray) -> np.ndarray:
            return np.concatenate([values, np.zeros(pad, values.dtype)]).reshape(streams, -1)

        inputs, targets, weights = grid(ids[:-1]), grid(ids[1:]), grid(np.ones(count))
        states = [tf.zeros((streams, size)) for size in self.sizes]
        total = 0.0
        for start in range(0, per_stream, chunk_length):
            window = slice(start, start + chunk_length)
            nll, states = self._nll(inputs[:, window], targets[:, window], states)
            total += float(np.sum(nll.numpy().astype(np.float64) * weights[:, window]))
        return math.exp(total / count)


def exact_perplexity(model: keras.Model, ids: np.ndarray, *, streams: int = 64,
                     chunk_length: int | None = None) -> float:
    """``exp(mean NLL)`` of every token of ``ids`` after the first, full softmax, the state
    carried across chunks (see :class:`PerplexityScorer`)."""
    return PerplexityScorer(model)(ids, streams=streams, chunk_length=chunk_length)


# ----------------------------------------------------------------------------- training


def _sampling_probability(ids: tf.Tensor, vocab_size: int) -> tf.Tensor:
    """P(id) under the log-uniform (Zipf) distribution, TensorFlow's default candidate sampler:
    it suits a vocabulary sorted by frequency."""
    k = tf.cast(ids, tf.float64)
    return (tf.math.log(k + 2.0) - tf.math.log(k + 1.0)) / math.log(vocab_size + 1.0)


def budget_steps(params: Any) -> int:
    """Training steps of the budget: ``ceil(train_tokens / (batch_size x sequence_length))``."""
    return math.ceil(params.train_tokens / (params.batch_size * params.sequence_length))


def _learning_rate(params: Any) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """``learning_rate``, constant or falling linearly to 0 at the last of the budget's steps
    (a function of the optimizer's step count, which the checkpoint holds)."""
    if params.schedule == "constant":
        return params.learning_rate
    return keras.optimizers.schedules.PolynomialDecay(
        params.learning_rate, decay_steps=budget_steps(params), end_learning_rate=0.0, power=1.0)


def init_embedding(model: keras.Model, vocab: Sequence[str], vectors: Any, *, norm: float,
                   seed: int) -> float:
    """Start ``model``'s embedding (the tied softmax weights too) from word ``vectors``
    (:class:`textrnn.sentiment.embeddings.WordVectors`, of the embedding's dimension), each
    scaled to length ``norm``; words without a vector keep a uniform start. Returns the share of
    the vocabulary's words covered."""
    matrix, covered = vectors.initial_matrix(vocab, norm=norm, seed=seed)
    model.get_layer("embedding").set_weights([matrix])
    return covered


class _Trainer:
    """One compiled training step ``step -> loss``: its batch, candidates and (through the
    dropout layers' seed state, which is checkpointed) its dropout follow from (seed, step)."""

    def __init__(self, model: keras.Model, params: Any, *, seed: int, train_ids: np.ndarray):
        self.model, self.params, self.seed = model, params, seed
        self.optimizer = training.make_optimizer("lazy_adam", learning_rate=_learning_rate(params),
                                                 clipnorm=params.clipnorm)
        self.optimizer.build(model.trainable_variables)
        self.stream = tf.constant(train_ids, dtype=tf.int32)
        self.vocab_size = int(_tied(model)[0].shape[0])
        self.step = tf.function(self._step)

    def _batch(self, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """``batch_size`` windows at random offsets: inputs and targets (batch, time)."""
        length = self.params.sequence_length
        starts = tf.random.stateless_uniform(
            [self.params.batch_size], seed, minval=0, dtype=tf.int64,
            maxval=tf.shape(self.stream, out_type=tf.int64)[0] - length)
        windows = tf.gather(self.stream, starts[:, None] + tf.range(length + 1, dtype=tf.int64))
        return windows[:, :-1], windows[:, 1:]                               # (batch, time) each

    def _loss(self, hidden: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """Mean loss of ``hidden`` (tokens, dim) for ``targets`` (tokens,): the sampled softmax
        (the true word against ``sampled`` log-uniform candidates), or the full one."""
        embeddings, bias = (variable.value for variable in _tied(self.model))
        count, vocab = self.params.sampled, self.vocab_size
        if count == 0:
            scores = tf.matmul(hidden, embeddings, transpose_b=True) + bias  # (tokens, vocab)
            return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(targets, scores))
        uniform = tf.random.stateless_uniform([count], seed, dtype=tf.float64)
        candidates = tf.clip_by_value(
            tf.cast(tf.exp(uniform * math.log(vocab + 1.0)), tf.int64) - 1, 0, vocab - 1)
        labels = tf.cast(targets[:, None], tf.int64)                         # (tokens, 1)
        expected = [tf.cast(count * _sampling_probability(ids, vocab), tf.float32)
                    for ids in (labels, candidates)]
        return tf.reduce_mean(tf.nn.sampled_softmax_loss(
            weights=embeddings, biases=bias, labels=labels, inputs=hidden, num_sampled=count,
            num_classes=vocab, sampled_values=(candidates, *expected),
            remove_accidental_hits=True))

    def _step(self, step: tf.Tensor) -> tf.Tensor:
        seeds = tf.random.experimental.stateless_split(
            tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)]), 2)
        inputs, targets = self._batch(seeds[0])
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            hidden = self.model(inputs, training=True)                      # (batch, time, dim)
            loss = self._loss(tf.reshape(hidden, (-1, hidden.shape[-1])),
                              tf.reshape(targets, (-1,)), seeds[1])
        gradients = tape.gradient(loss, variables)       # embedding: row-sparse (IndexedSlices)
        self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return loss

    def save(self, path: Path, progress: dict[str, Any]) -> None:
        """Weights, dropout seeds, optimizer state and ``progress`` in one file, atomically."""
        arrays = {f"{prefix}_{i}": keras.ops.convert_to_numpy(variable)
                  for prefix, variables in (("model", self.model.variables),
                                            ("optimizer", self.optimizer.variables))
                  for i, variable in enumerate(variables)}
        with atomic_path(path) as tmp, tmp.open("wb") as handle:
            np.savez(handle, progress=np.array(json.dumps(progress)), **arrays)

    def restore(self, path: Path) -> dict[str, Any] | None:
        if not path.is_file():
            return None
        with np.load(path) as saved:
            for prefix, variables in (("model", self.model.variables),
                                      ("optimizer", self.optimizer.variables)):
                for i, variable in enumerate(variables):
                    variable.assign(saved[f"{prefix}_{i}"])
            return json.loads(str(saved["progress"]))


def _digest(*arrays: Any) -> str:
    hasher = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(keras.ops.convert_to_numpy(array))
        hasher.update(f"{array.dtype}{array.shape}".encode())
        hasher.update(array.tobytes())
    return hasher.hexdigest()[:16]


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}m{seconds:02d}s"


def train_lm(model: keras.Model, train_ids: np.ndarray, val_ids: np.ndarray, *, params: Any,
             seed: int, work_dir: str | Path,
             log: Callable[[str], object] = print) -> list[dict[str, float]]:
    """Train ``model`` on the id stream ``train_ids`` for ``ceil(train_tokens / (batch_size x
    sequence_length))`` steps of LazyAdam; returns one row per evaluation: ``{step, tokens,
    train_loss, val_perplexity, seconds}``.

    Every ``eval_every`` steps and at the end: exact perplexity on ``val_ids``, one line through
    ``log`` and a checkpoint in ``work_dir``. ``train_loss`` is the mean training loss (sampled
    softmax when ``sampled`` > 0: below the full softmax's) since the previous evaluation;
    ``seconds`` counts training and evaluation, across resumes. The model ends with the weights
    of the final step. Killed and started again with the same arguments, it resumes from the
    last checkpoint and ends with the same weights; the checkpoint is deleted once training
    ends.
    """
    train_ids = np.asarray(train_ids, dtype=np.int32)
    val_ids = np.asarray(val_ids, dtype=np.int32)
    if len(train_ids) < params.sequence_length + 1:
        raise DataError(f"the training stream ({len(train_ids)} tokens) is shorter than one "
                        f"window of {params.sequence_length} + 1 tokens")
    if len(val_ids) < 2:
        raise DataError(f"the validation stream has {len(val_ids)} token(s): at least 2 needed")
    per_step = params.batch_size * params.sequence_length
    steps = budget_steps(params)
    fingerprint = {
        "params": {name: getattr(params, name) for name in PretrainParams.model_fields
                   if hasattr(params, name)},
        "seed": seed, "train_ids": _digest(train_ids), "val_ids": _digest(val_ids),
        "start_weights": _digest(*model.weights)}
    work_dir = training.prepare_work_dir(Path(work_dir), fingerprint)
    trainer = _Trainer(model, params, seed=seed, train_ids=train_ids)
    scorer = PerplexityScorer(model)
    progress = trainer.restore(work_dir / STATE_FILE) or {"step": 0, "rows": [], "seconds": 0.0}
    step, rows = progress["step"], progress["rows"]
    if step:
        log(f"resuming at step {step + 1}/{steps} from {work_dir / STATE_FILE}")
    first_step, started, losses = step, time.perf_counter(), []
    while step < steps:
        losses.append(float(trainer.step(tf.constant(step, tf.int64))))
        step += 1
        if step % params.eval_every and step < steps:
            continue
        perplexity = scorer(val_ids)
        here = time.perf_counter() - started
        rate = (step - first_step) * per_step / here                       # tokens per second
        rows.append({"step": step, "tokens": step * per_step, "train_loss": float(np.mean(losses)),
                     "val_perplexity": perplexity, "seconds": progress["seconds"] + here})
        log(f"step {step}/{steps}  tokens {step * per_step:,}  "
            f"train loss {rows[-1]['train_loss']:.3f}  val perplexity {perplexity:.1f}  "
            f"{rate:,.0f} tokens/s  ETA {_duration((steps - step) * per_step / rate)}")
        if step < steps:
            trainer.save(work_dir / STATE_FILE,
                         {"step": step, "rows": rows, "seconds": rows[-1]["seconds"]})
        losses = []
    # Done: a later run with these arguments trains afresh (its code may have changed).
    (work_dir / STATE_FILE).unlink(missing_ok=True)
    return rows


# ----------------------------------------------------------------------------- saved model


def save(directory: str | Path, model: keras.Model, vocab: Sequence[str],
         meta: dict[str, Any]) -> None:
    """Write ``lm.keras``, ``vocab.txt`` (a word per line, the first one empty: PAD) and
    ``meta.json`` into ``directory``."""
    if list(vocab[:2]) != [PAD, UNK] or any(any(c.isspace() for c in w) for w in vocab):
        raise ValueError("a vocabulary starts with PAD, UNK and its words hold no whitespace")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save(directory / MODEL_FILE)
    (directory / VOCAB_FILE).write_bytes(("\n".join(vocab) + "\n").encode("utf-8"))
    write_json(directory / META_FILE, meta)


def load(directory: str | Path) -> tuple[keras.Model, list[str], dict[str, Any]]:
    """Read back what :func:`save` wrote: ``(model, vocab, meta)``."""
    directory = Path(directory)
    fix = "run `dvc repro pretrain_lm`"
    if not directory.is_dir():
        raise UserError(f"{directory} is missing: {fix}")
    if not (directory / META_FILE).is_file():
        raise UserError(f"{directory / META_FILE} is missing: {fix}")
    try:
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UserError(f"{directory / META_FILE} is not valid JSON ({exc}): {fix}") from None
    if meta.get("corpus") == "none":
        raise UserError(f"{directory} holds no language model (pretrain.corpus: none): set "
                        "pretrain.corpus: imdb and run `dvc repro pretrain_lm`")
    for name in (MODEL_FILE, VOCAB_FILE):
        if not (directory / name).is_file():
            raise UserError(f"{directory / name} is missing: {fix}")
    try:
        model = keras.saving.load_model(directory / MODEL_FILE, safe_mode=True)
    except (OSError, ValueError) as exc:
        raise UserError(f"{directory / MODEL_FILE} cannot be read "
                        f"({str(exc).splitlines()[0][:200]}): {fix}") from None
    vocab = (directory / VOCAB_FILE).read_bytes().decode("utf-8").split("\n")[:-1]
    if vocab[:2] != [PAD, UNK] or len(vocab) != int(_tied(model)[0].shape[0]):
        raise UserError(f"{directory / VOCAB_FILE} ({len(vocab)} words) does not match "
                        f"{directory / MODEL_FILE}: {fix}")
    return model, vocab, meta
