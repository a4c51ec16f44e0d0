"""Character-level language models: SimpleRNN, LSTM and GRU over the same skeleton.

``build_charlm(kind, params, vocab_size=...)`` (``kind``: a recurrent charlm kind of
:mod:`textrnn.catalog`) returns an uncompiled Keras model that maps int
character ids ``(batch, time)`` to next-character logits ``(batch, time, vocab)``: every
position of a window is a target (sequence-to-sequence), trained with sparse targets.
:func:`state_model` turns a trained model into the same network with explicit recurrent
states, which the decoders and the exact-perplexity evaluation step through chunk by chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import layers

from textrnn import training
from textrnn.config import CharlmNeuralParams
from textrnn.layers import recurrent_layer


def build_charlm(kind: Any, params: CharlmNeuralParams, *, vocab_size: int) -> keras.Model:
    """Embedding -> ``params.layers`` recurrent layers (dropout between) -> logits per step.

    No recurrent dropout: it would turn off the fused kernels, several times slower on CPU.
    """
    if vocab_size < 2:
        raise ValueError(f"vocab_size must be at least 2, got {vocab_size}")
    training.set_precision(params.mixed_precision, key="train.charlm")
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")               # (batch, time)
    # Index 0 is the unknown-character token, a real input: no masking.
    x = layers.Embedding(vocab_size, params.embedding_dim, name="embedding")(ids)
    for index in range(params.layers):
        x = recurrent_layer(kind.cell, params.units, return_sequences=True,
                            implementation=params.implementation,
                            name=f"{kind.name}_{index + 1}")(x)               # (batch, time, units)
        if params.dropout > 0:
            x = layers.Dropout(params.dropout, name=f"dropout_{index + 1}")(x)
    logits = layers.Dense(vocab_size, name="logits",                          # (batch, time, vocab)
                          dtype="float32")(x)          # float32 even under mixed precision
    return keras.Model(ids, logits, name=f"charlm_{kind.name}")


def _state_sizes(layer: keras.layers.RNN) -> list[int]:
    size = layer.cell.state_size                    # LSTM: [units, units]; GRU, SimpleRNN: units
    return list(size) if isinstance(size, (list, tuple)) else [size]


def state_model(model: keras.Model) -> tuple[keras.Model, list[int]]:
    """The trained ``model`` with its recurrent states as explicit inputs and outputs.

    Returns ``(network, state_sizes)``; ``network([ids, *states])`` gives
    ``[logits (batch, time, vocab), *new_states (batch, size)]``. It shares the embedding and
    output weights with ``model`` and copies the recurrent weights; dropout is left out (it is
    the identity at inference). Feed ``time = 1`` to step one character, or a chunk of text to
    prime a prompt or score a long text with the state carried from chunk to chunk.
    """
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    state_inputs: list[Any] = []
    state_outputs: list[Any] = []
    sizes: list[int] = []
    x = ids
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer | keras.layers.Dropout):
            continue
        if isinstance(layer, keras.layers.RNN):
            layer_sizes = _state_sizes(layer)
            config = {**layer.get_config(), "return_state": True, "return_sequences": True,
                      "stateful": False, "name": f"{layer.name}_stepped"}
            clone = type(layer).from_config(config)
            initial = [keras.Input(shape=(size,), name=f"{layer.name}_state_{i}")
                       for i, size in enumerate(layer_sizes)]
            outputs = clone(x, initial_state=initial)
            clone.set_weights(layer.get_weights())
            x, new_states = outputs[0], list(outputs[1:])
            state_inputs += initial
            state_outputs += new_states
            sizes += layer_sizes
        else:
            x = layer(x)                               # embedding, logits: the same weights
    network = keras.Model([ids, *state_inputs], [x, *state_outputs], name=f"{model.name}_stepped")
    return network, sizes


def cell_step(model: keras.Model) -> Callable[[Any, list[Any]], tuple[Any, list[Any]]]:
    """One character through the trained ``model``'s own layers, calling the recurrent CELLS.

    ``step(ids (batch,), states) -> (logits (batch, vocab), new_states)``, states ordered as in
    :func:`state_model`. Calling a cell skips the layer's loop over time, which is most of the
    cost of a one-character call.
    """
    stack = [layer for layer in model.layers
             if not isinstance(layer, keras.layers.InputLayer | keras.layers.Dropout)]

    def step(ids: Any, states: list[Any]) -> tuple[Any, list[Any]]:
        x, new_states, used = ids, [], 0
        for layer in stack:
            if isinstance(layer, keras.layers.RNN):
                count = len(_state_sizes(layer))
                x, layer_states = layer.cell(x, list(states[used:used + count]), training=False)
                if not isinstance(layer_states, list | tuple):       # GRU, SimpleRNN cells
                    layer_states = [layer_states]
                new_states += list(layer_states)
                used += count
            else:
                x = layer(x)                           # (batch, embedding) ... (batch, vocab)
        return x, new_states

    return step
