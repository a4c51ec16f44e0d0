"""Layers shared by the model builders of every task.

:func:`recurrent_layer` is the one place that maps a model name to a recurrent layer, so the
builders never differ by one layer class. :class:`MaskedMaxMeanPooling` pools a masked sequence.
Custom layers are registered, so ``keras.saving.load_model(path, safe_mode=True)`` loads them
once this module is imported (``import textrnn.models`` does it).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops

RECURRENT_KINDS = ("simple_rnn", "lstm", "gru", "bilstm")
_CELLS = {"simple_rnn": layers.SimpleRNN, "lstm": layers.LSTM, "gru": layers.GRU,
          "bilstm": layers.LSTM}


def recurrent_layer(
    kind: str,
    units: int,
    *,
    return_sequences: bool = False,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    l2: float = 0.0,
    name: str | None = None,
    **kwargs: Any,
) -> layers.Layer:
    """A recurrent layer of ``kind`` (simple_rnn, lstm, gru, bilstm) with ``units`` per direction.

    ``l2`` > 0 puts an L2 penalty on the input and recurrent kernels. Extra keyword arguments go
    to the Keras layer (e.g. ``return_state``, ``stateful``). Masks are honoured: masked steps
    leave the state unchanged and, with ``return_sequences``, output zeros.
    """
    if kind not in _CELLS:
        raise ValueError(f"unknown recurrent kind {kind!r}; known: {', '.join(RECURRENT_KINDS)}")
    regularizer = keras.regularizers.L2(l2) if l2 > 0 else None
    layer = _CELLS[kind](
        units,
        return_sequences=return_sequences,
        dropout=dropout,
        recurrent_dropout=recurrent_dropout,
        kernel_regularizer=regularizer,
        recurrent_regularizer=regularizer,
        name=None if kind == "bilstm" else name,
        **kwargs,
    )
    if kind == "bilstm":
        layer = layers.Bidirectional(layer, merge_mode="concat", name=name)
    return layer


def recurrent_stack(
    x: Any, kind: str, *, units: int, layers_count: int, return_sequences: bool, **kwargs: Any
) -> Any:
    """``layers_count`` recurrent layers on ``x`` (batch, time, features); the last one returns
    sequences only if ``return_sequences``. Output (batch, [time,] units x directions)."""
    for index in range(layers_count):
        last = index == layers_count - 1
        x = recurrent_layer(kind, units, return_sequences=return_sequences or not last,
                            name=f"{kind}_{index + 1}", **kwargs)(x)
    return x


@keras.saving.register_keras_serializable(package="textrnn")
class MaskedMaxMeanPooling(layers.Layer):
    """(batch, time, features) + mask -> (batch, 2 x features): max and mean over unmasked steps.

    A sequence with no unmasked step pools to zeros. Keras' GlobalMaxPooling1D ignores masks, so
    padding (zeros out of a masked RNN) would leak into the max.
    """

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs: Any, mask: Any = None) -> Any:
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        keep = ops.expand_dims(ops.cast(mask, "bool"), -1)                      # (batch, time, 1)
        weights = ops.cast(keep, inputs.dtype)
        count = ops.maximum(ops.sum(weights, axis=1), 1.0)                      # (batch, 1)
        mean = ops.sum(inputs * weights, axis=1) / count                        # (batch, features)
        lowest = ops.full_like(inputs, -1e9)
        highest = ops.max(ops.where(keep, inputs, lowest), axis=1)              # (batch, features)
        any_step = ops.any(keep, axis=1)                                        # (batch, 1)
        highest = ops.where(any_step, highest, ops.zeros_like(highest))
        return ops.concatenate([highest, mean], axis=-1)

    def compute_mask(self, inputs: Any, mask: Any = None) -> None:
        return None

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], 2 * input_shape[-1])
