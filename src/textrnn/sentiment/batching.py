"""Length-bucketed tf.data pipelines: each batch is padded only to its own longest sequence.

Padding every text to the longest one in the corpus makes a recurrent layer step through
mostly padding (UCI: 62 steps for a mean of 12 tokens). Here the rows are grouped by length, one
dataset per length, and each epoch draws them in order of length, cut into batches: nearly
every computed step is a real token. The order still changes every epoch: rows of equal length
come in a new order, and so do the batches.

The pipeline holds no Python function (no ``map``), only tf.data's own kernels: Keras makes a
new iterator over the dataset at every epoch's start and end, and a ``map`` costs ~15 ms to
instantiate each time (a pipeline with two of them cost 60 ms of a 0.6 s UCI epoch). This one
starts in about a millisecond. Padding left inside a batch is id 0, which the model masks
(``Embedding(mask_zero=True)``), so it never reaches a recurrent output.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from textrnn.sentiment.text import sequence_lengths


def bucketed_dataset(
    ids: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
) -> tf.data.Dataset:
    """``(ids (n, time) post-padded, labels (n,))`` -> batches ``((b, t_batch), (b,))``.

    ``t_batch`` is the longest row of the batch (at least 1). Every row appears once per pass;
    the batches are the rows sorted longest first and cut every ``batch_size`` rows, so all
    hold ``batch_size`` rows but the last, which holds the shortest ones. With ``shuffle``, each
    pass (each epoch) draws rows of equal length in a new order and the full batches in a new
    order; without it (validation) the order is fixed. Deterministic for a given ``seed``.
    """
    if len(ids) != len(labels):
        raise ValueError(f"{len(ids)} rows of ids but {len(labels)} labels")
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    n = len(ids)
    if n == 0:
        return tf.data.Dataset.from_tensor_slices((ids[:, :1], labels)).batch(batch_size)
    # an empty text keeps one step (id 0, masked), so an all-empty batch still runs
    lengths = np.maximum(sequence_lengths(ids), 1)
    widths = np.unique(lengths)                              # one bucket per length, ascending
    seeds = np.random.SeedSequence(seed).generate_state(len(widths) + 1)
    buckets = []
    for bucket, width in enumerate(widths):
        rows = np.flatnonzero(lengths == width)
        rows_ds = tf.data.Dataset.from_tensor_slices((ids[rows, :width], labels[rows]))
        if shuffle:
            rows_ds = rows_ds.shuffle(len(rows), seed=int(seeds[bucket]),
                                      reshuffle_each_iteration=True)
        buckets.append(rows_ds)
    # Which bucket each row of an epoch comes from: longest first, in blocks of one batch. The
    # full blocks are shuffled; the short one (the shortest rows) stays last, so that batching
    # every batch_size rows cuts exactly at the blocks' edges.
    draws = np.searchsorted(widths, np.sort(lengths)[::-1]).astype("int64")
    n_full = n // batch_size
    blocks = tf.data.Dataset.from_tensor_slices(
        draws[:n_full * batch_size].reshape(n_full, batch_size))
    if shuffle:
        blocks = blocks.shuffle(max(n_full, 1), seed=int(seeds[-1]), reshuffle_each_iteration=True)
    draws_ds = blocks.unbatch().concatenate(
        tf.data.Dataset.from_tensor_slices(draws[n_full * batch_size:]))
    ds = tf.data.Dataset.choose_from_datasets(buckets, draws_ds).padded_batch(batch_size)
    # choose_from_datasets hides the size; declaring it lets Keras show progress
    ds = ds.apply(tf.data.experimental.assert_cardinality(-(-n // batch_size)))
    return ds.prefetch(tf.data.AUTOTUNE)


def padded_dataset(ids: np.ndarray, labels: np.ndarray, *, batch_size: int, shuffle: bool,
                   seed: int) -> tf.data.Dataset:
    """The naive pipeline (every row at full width), kept for the bucketing benchmark."""
    ds = tf.data.Dataset.from_tensor_slices((ids, labels))
    if shuffle:
        ds = ds.shuffle(len(ids), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def real_token_share(ds: tf.data.Dataset) -> float:
    """Share of the computed (batch x time) steps of ``ds`` that hold real tokens, not padding."""
    real = total = 0
    for ids, _ in ds.as_numpy_iterator():
        real += int((ids != 0).sum())
        total += ids.size
    return real / total if total else 0.0
