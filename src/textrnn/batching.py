"""Length-bucketed tf.data pipelines: each batch is padded only to its own longest sequence.

Padding every text to the longest one in the corpus makes a recurrent layer step through
mostly padding (UCI: 62 steps for a median of 10 tokens). Here the rows are shuffled, cut into
pools of ``pool_batches`` batches, sorted by length inside each pool, batched, trimmed to the
longest row of the batch, and the batches shuffled again: nearly every computed step is a real
token, and the order still changes every epoch. Padding left inside a batch is id 0, which the
model masks (``Embedding(mask_zero=True)``), so it never reaches a recurrent output.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from textrnn.text import sequence_lengths


def bucketed_dataset(
    ids: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    pool_batches: int = 64,
) -> tf.data.Dataset:
    """``(ids (n, time) post-padded, labels (n,))`` -> batches ``((b, t_batch), (b,))``.

    ``t_batch`` is the longest row of the batch (at least 1). Without ``shuffle`` the whole set
    is sorted by length once (validation: order does not matter, speed does). Deterministic for
    a given ``seed``.
    """
    if len(ids) != len(labels):
        raise ValueError(f"{len(ids)} rows of ids but {len(labels)} labels")
    if batch_size < 1 or pool_batches < 1:
        raise ValueError("batch_size and pool_batches must be >= 1")
    lengths = sequence_lengths(ids)
    if not shuffle:
        order = np.argsort(lengths, kind="stable")
        ids, labels, lengths = ids[order], labels[order], lengths[order]
    ds = tf.data.Dataset.from_tensor_slices((ids, lengths, labels))
    pool = batch_size * pool_batches
    if shuffle:
        ds = ds.shuffle(len(ids), seed=seed, reshuffle_each_iteration=True)
        # Sort each pool by length; pools are whole batches, so no batch straddles two pools.
        ds = ds.batch(pool).map(_sort_by_length).unbatch()
    ds = ds.batch(batch_size).map(_trim)
    # unbatch() hides the size; declaring it lets Keras show progress and avoids a warning
    ds = ds.apply(tf.data.experimental.assert_cardinality(-(-len(ids) // batch_size)))
    if shuffle:
        ds = ds.shuffle(pool_batches * 4, seed=seed + 1, reshuffle_each_iteration=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def _sort_by_length(ids: tf.Tensor, lengths: tf.Tensor, labels: tf.Tensor):
    order = tf.argsort(lengths, stable=True)
    return tf.gather(ids, order), tf.gather(lengths, order), tf.gather(labels, order)


def _trim(ids: tf.Tensor, lengths: tf.Tensor, labels: tf.Tensor):
    # (batch, time) -> (batch, longest in batch); keep one step so an all-empty batch still runs
    width = tf.maximum(tf.reduce_max(lengths), 1)
    return ids[:, :width], labels


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
