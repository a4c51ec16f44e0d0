"""Text -> integer token ids, with a Keras TextVectorization adapted on the training texts only.

The same vectorizer object goes inside the exported model, so training and serving cannot drift.
Index 0 is padding, index 1 the out-of-vocabulary token; real tokens are never 0, which is what
lets masking (``mask_zero=True``) and :func:`sequence_lengths` tell text from padding.
:func:`tokens` is the vectorizer's split written in Python: the one definition of a word for the
word vectors and the attributions.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

# What Keras' TextVectorization does by default ("lower_and_strip_punctuation", split on
# whitespace), written out so that the word vectors (embed) and the service's word attributions
# split a text exactly as the models do:
# - tf.strings.lower folds ASCII letters only: "ÉTÉ" -> "ÉtÉ", not "été" (str.lower would);
# - these 32 characters are deleted;
# - tf.strings.split breaks on ASCII whitespace only, so a no-break space joins two words.
# tests/unit/test_text.py checks tokens() against a real vectorizer on such strings.
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_PUNCTUATION = re.compile("[" + re.escape(string.punctuation) + "]")
_ASCII_SPACE = re.compile("[ \t\n\v\f\r]+")


def standardize(text: str) -> str:
    """``text`` as the vectorizer sees it before splitting: ASCII letters lower-cased,
    punctuation deleted."""
    return _PUNCTUATION.sub("", text.translate(_ASCII_LOWER))


def tokens(text: str) -> list[str]:
    """``text`` split into words exactly as the sentiment models' vectorizer splits it."""
    return [word for word in _ASCII_SPACE.split(standardize(text)) if word]


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
    import keras

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
    """``texts`` -> int32 ids ``(len(texts), max_length)``, computed in batches. A text with no
    token is a row of padding here; every network's first layer
    (:class:`~textrnn.layers.EnsureToken`) reads it as one unknown word."""
    import keras

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
