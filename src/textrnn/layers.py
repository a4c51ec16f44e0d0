"""Layers shared by the model builders of every task.

:func:`recurrent_layer` is the one place that makes a recurrent layer (the kind's ``cell``, one
direction or two), so the builders never differ by one layer class.
:class:`MaskedMaxMeanPooling` pools a masked sequence; :class:`RowEmbedding` is an embedding
whose lookup reads only the batch's rows; :class:`Temperature` rescales class probabilities
(temperature scaling, kept inside a saved sentiment model).
Custom layers are registered, so ``keras.saving.load_model(path, safe_mode=True)`` loads them
once this module is imported (``import textrnn.layers``; the model modules of both tasks do it).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops


def recurrent_layer(
    cell: str,
    units: int,
    *,
    bidirectional: bool = False,
    return_sequences: bool = False,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    l2: float = 0.0,
    name: str | None = None,
    **kwargs: Any,
) -> layers.Layer:
    """A recurrent layer of class ``cell`` (``keras.layers.LSTM`` ...: a kind's ``cell`` in
    :mod:`textrnn.catalog`) with ``units`` per direction; ``bidirectional`` adds a second copy
    that reads backwards (outputs concatenated).

    ``l2`` > 0 puts an L2 penalty on the input and recurrent kernels. Extra keyword arguments go
    to the Keras layer (e.g. ``return_state``, ``stateful``). Masks are honoured: masked steps
    leave the state unchanged and, with ``return_sequences``, output zeros.
    """
    layer_class = getattr(layers, cell, None)
    if not (isinstance(layer_class, type) and issubclass(layer_class, layers.RNN)):
        raise ValueError(f"{cell!r} is not a recurrent layer class of keras.layers")
    regularizer = keras.regularizers.L2(l2) if l2 > 0 else None
    layer = layer_class(
        units,
        return_sequences=return_sequences,
        dropout=dropout,
        recurrent_dropout=recurrent_dropout,
        kernel_regularizer=regularizer,
        recurrent_regularizer=regularizer,
        name=None if bidirectional else name,
        **kwargs,
    )
    if bidirectional:
        layer = layers.Bidirectional(layer, merge_mode="concat", name=name)
    return layer


def recurrent_stack(
    x: Any, cell: str, *, label: str, units: int, layers_count: int, return_sequences: bool,
    **kwargs: Any,
) -> Any:
    """``layers_count`` recurrent layers on ``x`` (batch, time, features), named
    ``<label>_<i>``; the last one returns sequences only if ``return_sequences``.
    Output (batch, [time,] units x directions)."""
    for index in range(layers_count):
        last = index == layers_count - 1
        x = recurrent_layer(cell, units, return_sequences=return_sequences or not last,
                            name=f"{label}_{index + 1}", **kwargs)(x)
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


@keras.saving.register_keras_serializable(package="textrnn")
class RowEmbedding(layers.Embedding):
    """``keras.layers.Embedding`` that reads only the rows a batch uses.

    Keras' layer reads the whole table and gathers from that copy. Once a sparse update has
    touched the table (``lazy_adam`` writes only the used rows), TensorFlow copies it on every
    dense read: 12 MB per batch for the UCI vocabulary with its word vectors (30,654 x 100), about
    0.75 ms of a 5 ms LSTM step. Here the lookup is one ``ResourceGather`` of the batch's rows:
    the same values and gradients, no copy (``tests/unit/test_models_sentiment.py`` checks both;
    ``benchmarks/bench_embedding.py`` measures an epoch). Ids must lie in ``[0, input_dim)``.
    """

    def call(self, inputs: Any) -> Any:
        table = getattr(self.embeddings, "value", None)
        if not hasattr(table, "sparse_read"):           # not a TensorFlow resource variable
            return super().call(inputs)
        if keras.backend.standardize_dtype(inputs.dtype) not in ("int32", "int64"):
            inputs = ops.cast(inputs, "int32")
        return ops.cast(table.sparse_read(inputs), self.compute_dtype)


@keras.saving.register_keras_serializable(package="textrnn")
class Temperature(layers.Layer):
    """Class probabilities (batch, n_classes) -> the same rescaled by temperature scaling.

    ``softmax(log(p) / temperature)`` equals ``softmax(logits / temperature)`` for the logits
    that gave ``p`` (the log-sum-exp term cancels), so the layer can follow any softmax output.
    A temperature above 1 softens over-confident probabilities; the most probable class never
    changes. :mod:`textrnn.sentiment.calibration` fits it on the validation split.
    """

    def __init__(self, temperature: float = 1.0, **kwargs: Any):
        super().__init__(**kwargs)
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)

    def call(self, inputs: Any) -> Any:
        logits = ops.log(ops.maximum(inputs, 1e-30))          # (batch, n_classes), up to a constant
        return ops.softmax(logits / self.temperature, axis=-1)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "temperature": self.temperature}
