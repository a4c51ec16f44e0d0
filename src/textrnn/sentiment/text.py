"""Text -> integer token ids, with a Keras TextVectorization adapted on the training texts only.

The same vectorizer object goes inside the exported model, so training and serving cannot drift.
Index 0 is padding, index 1 the out-of-vocabulary token; real tokens are never 0, which is what
lets masking (``mask_zero=True``) and :func:`sequence_lengths` tell text from padding.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np


def make_vectorizer(
    train_texts: Sequence[str], *, max_tokens: int, max_length: int, ngrams: int = 1,
    extra_words: Sequence[str] = (),
) -> keras.layers.TextVectorization:
    """A TextVectorization adapted on ``train_texts``: lower case, punctuation stripped.

    Outputs ``(batch, max_length)`` int ids, post-padded with 0 and truncated at ``max_length``.
    ``ngrams`` > 1 adds word n-grams (as extra tokens after the unigrams) to the vocabulary.
    ``extra_words`` (pretrained word vectors' words, never val or test text) are appended after
    the ``max_tokens`` words of train, so a word unseen in train still gets its own id.
    """
    if len(train_texts) == 0:
        raise ValueError("cannot adapt a vectorizer on an empty training set")
    vectorizer = keras.layers.TextVectorization(
        max_tokens=max_tokens,
        output_mode="int",
        output_sequence_length=max_length,
        ngrams=ngrams if ngrams > 1 else None,
        name="vectorizer",
    )
    vectorizer.adapt(np.asarray(train_texts, dtype=object), batch_size=1024)
    if not len(extra_words):
        return vectorizer
    words = [str(word) for word in vectorizer.get_vocabulary()[2:]]  # minus padding and OOV
    known = set(words)
    words += [word for word in extra_words if word and word not in known]
    return keras.layers.TextVectorization(
        max_tokens=None, output_mode="int", output_sequence_length=max_length,
        ngrams=ngrams if ngrams > 1 else None, vocabulary=words, name="vectorizer")


def vectorize(vectorizer: keras.layers.TextVectorization, texts: Sequence[str]) -> np.ndarray:
    """``texts`` -> int32 ids ``(len(texts), max_length)``, computed in batches."""
    ids = [
        keras.ops.convert_to_numpy(vectorizer(np.asarray(texts[start:start + 4096], dtype=object)))
        for start in range(0, len(texts), 4096)
    ]
    return np.concatenate(ids).astype("int32") if ids else np.zeros((0, 0), "int32")


def sequence_lengths(ids: np.ndarray) -> np.ndarray:
    """Tokens per row of post-padded ``ids`` ``(n, time)``: position of the last non-zero + 1."""
    nonzero = ids != 0
    last = ids.shape[1] - np.argmax(nonzero[:, ::-1], axis=1)
    return np.where(nonzero.any(axis=1), last, 0).astype("int32")
