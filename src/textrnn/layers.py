"""Layers shared by the model builders of every task.

:func:`recurrent_layer` is the one place that makes a recurrent layer (the kind's ``cell``, one
direction or two, Keras' loop or the fused kernel of :class:`FusedLSTM`), so the builders never
differ by one layer class; :func:`recurrent_kernels` says which kernel each one runs.
:class:`EnsureToken` reads a text with no token as one unknown word (:func:`ensure_token`).
:class:`MaskedMaxMeanPooling` pools a masked sequence; :class:`RowEmbedding` is an embedding
whose lookup reads only the batch's rows; :class:`Temperature` rescales class probabilities
(temperature scaling, kept inside a saved sentiment model).
Custom layers are registered, so ``keras.saving.load_model(path, safe_mode=True)`` loads them
once this module is imported (``import textrnn.layers``; the model modules of both tasks do it).
"""

from __future__ import annotations

import functools
from typing import Any

import keras
from keras import layers, ops

IMPLEMENTATIONS = ("keras", "fused")
OOV_ID = 1   # TextVectorization's unknown-word id; 0 is padding


@functools.cache
def gpu_visible() -> bool:
    """Whether TensorFlow sees a GPU (then Keras' LSTM and GRU run cuDNN's kernels). Asked once
    per process: the devices do not change, and a fused layer asks at every call."""
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def _standard_cell(layer: Any) -> bool:
    """Whether an LSTM or GRU layer has what both cuDNN and the fused CPU kernel need: tanh and
    sigmoid activations, a bias, no recurrent dropout, no unrolling (Keras' documented cuDNN
    conditions, less the GRU's ``reset_after``)."""
    cell = layer.cell
    return (not layer.unroll and not cell.recurrent_dropout and cell.use_bias
            and cell.activation is keras.activations.tanh
            and cell.recurrent_activation is keras.activations.sigmoid)


def recurrent_layer(
    cell: str,
    units: int,
    *,
    bidirectional: bool = False,
    return_sequences: bool = False,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    l2: float = 0.0,
    implementation: str = "keras",
    name: str | None = None,
    **kwargs: Any,
) -> layers.Layer:
    """A recurrent layer of class ``cell`` (``keras.layers.LSTM`` ...: a kind's ``cell`` in
    :mod:`textrnn.catalog`) with ``units`` per direction; ``bidirectional`` adds a second copy
    that reads backwards (outputs concatenated).

    ``l2`` > 0 puts an L2 penalty on the input and recurrent kernels. Extra keyword arguments go
    to the Keras layer (e.g. ``return_state``, ``stateful``). Masks are honoured: masked steps
    leave the state unchanged and, with ``return_sequences``, output zeros.

    ``implementation``: ``keras`` (Keras' layer: a loop over time on CPU, cuDNN on a GPU) or
    ``fused`` (:class:`FusedLSTM`: TensorFlow's fused LSTM kernel on CPU, cuDNN on a GPU; without
    recurrent dropout). Both hold the same weights and compute the same function. TensorFlow
    has no fused kernel over a whole sequence for GRU or SimpleRNN: ``fused`` leaves them as
    they are (:func:`recurrent_kernels` reports what each layer runs).
    """
    layer_class = getattr(layers, cell, None)
    if not (isinstance(layer_class, type) and issubclass(layer_class, layers.RNN)):
        raise ValueError(f"{cell!r} is not a recurrent layer class of keras.layers")
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")
    if implementation == "fused" and layer_class is layers.LSTM:
        if recurrent_dropout:
            raise ValueError(f"implementation 'fused' has no recurrent dropout (got "
                             f"{recurrent_dropout}): set recurrent_dropout: 0, or "
                             "implementation: keras")
        layer_class = FusedLSTM
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


def _fused_lstm(inputs: Any, h0: Any, c0: Any, mask: Any, *, kernel: Any, recurrent_kernel: Any,
                bias: Any, go_backwards: bool) -> tuple[Any, Any, list[Any]]:
    """An LSTM over ``inputs`` (batch, time, features) in one ``BlockLSTM`` op (and one op for
    its gradient), in the format of Keras' backend loop: ``(last_output, outputs, [h, c])``.

    The kernel's weight matrix is the input and recurrent kernels stacked, its gates in the
    order input, cell, forget, output (Keras': input, forget, cell, output), with no forget bias
    added and no cell clipping. (``BlockLSTMV2`` takes Keras' order, but its gradient is wrong
    in TensorFlow 2.21: tests/unit/test_layers.py compares gradients.) ``mask`` (batch, time)
    must be right-padded (True then False, as a post-padded embedding gives); each row's state
    is read at its own length, outputs at masked steps are zeros, and ``go_backwards`` reverses
    each row within its length (what cuDNN does), so rows of any length give what Keras'
    loop gives.
    """
    import tensorflow as tf

    batch, steps = tf.shape(inputs)[0], tf.shape(inputs)[1]
    if mask is None:
        lengths = tf.fill([batch], steps)
    else:
        lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)                     # (batch,)
    x = tf.transpose(inputs, (1, 0, 2))                                  # (time, batch, features)
    if go_backwards:
        x = tf.reverse_sequence(x, lengths, seq_axis=0, batch_axis=1)
    i, f, c, o = tf.split(tf.concat([kernel, recurrent_kernel], axis=0), 4, axis=1)
    b_i, b_f, b_c, b_o = tf.split(bias, 4)
    no_peephole = tf.zeros_like(b_i)
    _, cells, _, _, _, _, hidden = tf.raw_ops.BlockLSTM(            # each (time, batch, units)
        seq_len_max=tf.cast(steps, tf.int64), x=x, cs_prev=c0, h_prev=h0,
        w=tf.concat([i, c, f, o], axis=1), wci=no_peephole, wcf=no_peephole, wco=no_peephole,
        b=tf.concat([b_i, b_c, b_f, b_o], axis=0), forget_bias=0.0, cell_clip=-1.0,
        use_peephole=False)
    last = tf.stack([tf.maximum(lengths - 1, 0), tf.range(batch)], axis=1)          # (batch, 2)
    started = (lengths > 0)[:, None]                        # a row with no step keeps its state
    h = tf.where(started, tf.gather_nd(hidden, last), h0)                        # (batch, units)
    c = tf.where(started, tf.gather_nd(cells, last), c0)
    real = tf.sequence_mask(lengths, steps)                                      # (batch, time)
    outputs = tf.where(tf.transpose(real)[:, :, None], hidden, tf.zeros_like(hidden))
    if go_backwards:
        outputs = tf.reverse(tf.reverse_sequence(outputs, lengths, seq_axis=0, batch_axis=1),
                             axis=[0])
    return h, tf.transpose(outputs, (1, 0, 2)), [h, c]


@keras.saving.register_keras_serializable(package="textrnn")
class FusedLSTM(layers.LSTM):
    """``keras.layers.LSTM`` whose loop over time is TensorFlow's fused ``BlockLSTM`` kernel on
    CPU: the whole sequence in one op forward and one backward, instead of a graph loop of small
    ops per step. Same weights (``get_weights``/``set_weights`` swap with ``keras.layers.LSTM``),
    same config, same function (masks included, tests/unit/test_layers.py). On a GPU it is
    Keras' LSTM (cuDNN). Needs tanh/sigmoid activations, a bias and no recurrent dropout;
    otherwise Keras' loop runs. Input ``dropout`` keeps one mask over the time steps, as Keras
    does.
    """

    def fused(self) -> bool:
        """Whether calls run the fused kernel (else Keras' own path)."""
        return (keras.backend.backend() == "tensorflow" and _standard_cell(self)
                and not gpu_visible())

    def inner_loop(self, sequences: Any, initial_state: Any, mask: Any,
                   training: bool = False) -> Any:
        if not self.fused():
            return super().inner_loop(sequences, initial_state, mask, training=training)
        if isinstance(mask, list | tuple):
            mask = mask[0]
        if training and self.dropout:
            keep = self.cell.get_dropout_mask(sequences[:, 0, :])          # (batch, features)
            sequences = sequences * ops.expand_dims(keep, axis=1)
        return _fused_lstm(sequences, initial_state[0], initial_state[1], mask,
                           kernel=self.cell.kernel, recurrent_kernel=self.cell.recurrent_kernel,
                           bias=self.cell.bias, go_backwards=self.go_backwards)


def recurrent_kernels(model: Any) -> dict[str, str]:
    """``{layer name: kernel}`` for every recurrent layer of ``model`` (nested models and both
    directions of a Bidirectional included): ``cudnn``, ``fused BlockLSTM`` or ``keras loop``.
    What runs is decided at call time; this reports what the layer's checks choose here: Keras
    takes cuDNN on a GPU for an LSTM or GRU with its default activations, a bias, no recurrent
    dropout, no unrolling and (GRU) ``reset_after`` (Keras' documented conditions)."""
    found: dict[str, str] = {}
    gpu = gpu_visible()

    def visit(layer: Any, name: str) -> None:
        if isinstance(layer, layers.Bidirectional):
            visit(layer.forward_layer, f"{name}/forward")
            visit(layer.backward_layer, f"{name}/backward")
        elif isinstance(layer, FusedLSTM) and layer.fused():
            found[name] = "fused BlockLSTM"
        elif isinstance(layer, layers.LSTM | layers.GRU):
            cudnn = (gpu and layer.use_cudnn in ("auto", True) and _standard_cell(layer)
                     and getattr(layer.cell, "reset_after", True))
            found[name] = "cudnn" if cudnn else "keras loop"
        elif isinstance(layer, layers.RNN):
            found[name] = "keras loop"
        elif isinstance(layer, keras.Model):
            for inner in layer.layers:
                visit(inner, f"{name}/{inner.name}" if name else inner.name)

    visit(model, "")
    return found


def describe_kernels(kernels: dict[str, str]) -> str:
    """:func:`recurrent_kernels`' ``{layer path: kernel}`` -> ``"keras loop (lstm_1)"`` (layer
    paths without the outermost model's name), for a stage's log line; "none" without one."""
    by_kernel: dict[str, list[str]] = {}
    for path, kernel in kernels.items():
        by_kernel.setdefault(kernel, []).append(path.split("/", 1)[-1])
    return "; ".join(f"{kernel} ({', '.join(names)})" for kernel, names in by_kernel.items()) \
        or "none"


def ensure_token(ids: Any) -> Any:
    """Token ids (batch, time), post-padded with 0 -> the same, where a row with no token (a
    text that standardises to nothing: "", "!!!") holds the unknown-word id at its first step.

    Such a text then reads as one unknown word, and no recurrent kernel ever meets a fully
    masked row (cuDNN refuses one at run time; a fully masked row has no state to pool).
    """
    real = ops.not_equal(ids, 0)
    empty = ops.logical_not(ops.any(real, axis=1, keepdims=True))                 # (batch, 1)
    first = ops.expand_dims(ops.equal(ops.arange(ops.shape(ids)[1]), 0), 0)       # (1, time)
    return ops.where(ops.logical_and(empty, first), ops.cast(OOV_ID, ids.dtype), ids)


@keras.saving.register_keras_serializable(package="textrnn")
class EnsureToken(layers.Layer):
    """Token ids (batch, time) -> the same with :func:`ensure_token` applied: the first layer of
    every sentiment network, so training, evaluation and the service read a text with no token
    alike (one unknown word)."""

    def call(self, inputs: Any) -> Any:
        return ensure_token(inputs)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape


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
        floor = -6e4 if keras.backend.standardize_dtype(inputs.dtype) == "float16" else -1e9
        lowest = ops.full_like(inputs, floor)                  # below any output; float16-safe
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


@keras.saving.register_keras_serializable(package="textrnn")
class TiedOutput(layers.Layer):
    """The output bias of a language model whose softmax weights are its embedding matrix
    (tied weights): passes its input (batch, time, embedding_dim) through unchanged and holds
    the bias (vocab_size,), so the saved model carries it. :meth:`logits` makes the output
    layer: ``hidden @ embeddings^T + bias`` (batch, time, vocab_size) (:mod:`textrnn.wordlm`)."""

    def __init__(self, vocab_size: int, **kwargs: Any):
        super().__init__(**kwargs)
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
        self.vocab_size = int(vocab_size)

    def build(self, input_shape: tuple) -> None:
        self.bias = self.add_weight(shape=(self.vocab_size,), initializer="zeros", name="bias")

    def call(self, inputs: Any) -> Any:
        return inputs

    def logits(self, hidden: Any, embeddings: Any) -> Any:
        return ops.matmul(hidden, ops.transpose(embeddings)) + self.bias

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "vocab_size": self.vocab_size}
