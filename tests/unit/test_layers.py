"""The fused LSTM kernel computes what Keras' LSTM computes, and empty texts become one token.

Each case builds the same small network twice, once with Keras' LSTM and once with
:class:`~textrnn.layers.FusedLSTM`, copies the weights across, and compares outputs and
gradients on a batch of rows of different lengths (post-padded, masked), one of them empty.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from textrnn.layers import EnsureToken, FusedLSTM, ensure_token, recurrent_kernels, recurrent_layer

# rows of 7, 3, 1 and 5 tokens, post-padded with 0; 0 never occurs inside a row
IDS = np.array([[3, 4, 5, 6, 7, 8, 9],
                [5, 2, 9, 0, 0, 0, 0],
                [7, 0, 0, 0, 0, 0, 0],
                [2, 3, 4, 5, 6, 0, 0]], dtype="int32")
LENGTHS = (IDS != 0).sum(axis=1)


def network(implementation: str, *, bidirectional: bool, return_sequences: bool,
            layers: int = 1) -> keras.Model:
    ids = keras.Input(shape=(None,), dtype="int32")
    x = keras.layers.Embedding(12, 6, mask_zero=True, name="embedding")(ids)
    for index in range(layers):
        last = index == layers - 1
        x = recurrent_layer("LSTM", 5, bidirectional=bidirectional,
                            return_sequences=return_sequences or not last,
                            implementation=implementation, name=f"lstm_{index + 1}")(x)
    return keras.Model(ids, x)


def pair(**options: object) -> tuple[keras.Model, keras.Model]:
    keras.utils.set_random_seed(3)
    reference = network("keras", **options)
    fused = network("fused", **options)
    fused.set_weights(reference.get_weights())      # the same variables, the same shapes
    return reference, fused


def outputs_and_gradients(model: keras.Model) -> tuple[np.ndarray, list[np.ndarray]]:
    with tf.GradientTape() as tape:
        out = model(IDS, training=False)
        weights = np.random.default_rng(0).normal(size=out.shape).astype("float32")
        real = (out if out.shape.rank == 2
                else out * tf.sequence_mask(LENGTHS, 7, "float32")[..., None])
        loss = tf.reduce_sum(real * weights)
    grads = tape.gradient(loss, model.trainable_variables)
    return out.numpy(), [g.numpy() if not isinstance(g, tf.IndexedSlices)
                         else tf.convert_to_tensor(g).numpy() for g in grads]


@pytest.mark.parametrize("bidirectional", [False, True], ids=["lstm", "bilstm"])
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last_state", "sequences"])
def test_fused_lstm_agrees_with_keras_on_outputs_and_gradients(bidirectional, return_sequences):
    reference, fused = pair(bidirectional=bidirectional, return_sequences=return_sequences)
    assert set(recurrent_kernels(fused).values()) == {"fused BlockLSTM"}
    assert set(recurrent_kernels(reference).values()) == {"keras loop"}
    out_ref, grads_ref = outputs_and_gradients(reference)
    out_fused, grads_fused = outputs_and_gradients(fused)
    if return_sequences:       # steps past a row's length are masked downstream: compare the rest
        real = np.arange(7)[None, :] < LENGTHS[:, None]
        np.testing.assert_allclose(out_fused[real], out_ref[real], atol=1e-5)
        assert not out_fused[~real].any()                 # zeros at masked steps
    else:
        np.testing.assert_allclose(out_fused, out_ref, atol=1e-5)
    assert len(grads_fused) == len(grads_ref)
    for g_fused, g_ref in zip(grads_fused, grads_ref, strict=True):
        np.testing.assert_allclose(g_fused, g_ref, atol=1e-5)


def test_stacked_fused_layers_agree_and_a_row_of_one_token_keeps_its_state():
    reference, fused = pair(bidirectional=True, return_sequences=False, layers=2)
    out_ref, grads_ref = outputs_and_gradients(reference)
    out_fused, grads_fused = outputs_and_gradients(fused)
    np.testing.assert_allclose(out_fused, out_ref, atol=1e-5)
    for g_fused, g_ref in zip(grads_fused, grads_ref, strict=True):
        np.testing.assert_allclose(g_fused, g_ref, atol=1e-5)


def test_a_saved_fused_model_loads_in_safe_mode_and_into_keras_lstm(tmp_path):
    reference, fused = pair(bidirectional=True, return_sequences=False)
    path = tmp_path / "fused.keras"
    fused.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert any(isinstance(layer.forward_layer, FusedLSTM) for layer in loaded.layers
               if isinstance(layer, keras.layers.Bidirectional))
    np.testing.assert_allclose(loaded(IDS).numpy(), fused(IDS).numpy(), atol=1e-6)
    # and back: Keras' own layer takes the fused layer's weights and gives the same outputs
    reference.set_weights(loaded.get_weights())
    np.testing.assert_allclose(reference(IDS).numpy(), fused(IDS).numpy(), atol=1e-5)


def test_fused_training_step_with_dropout_matches_keras_given_the_same_seed():
    def trained(implementation: str) -> list[np.ndarray]:
        keras.utils.set_random_seed(5)
        ids = keras.Input(shape=(None,), dtype="int32")
        x = keras.layers.Embedding(12, 6, mask_zero=True)(ids)
        x = recurrent_layer("LSTM", 5, dropout=0.3, implementation=implementation)(x)
        model = keras.Model(ids, keras.layers.Dense(2, activation="softmax")(x))
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
        model.fit(IDS, np.array([0, 1, 0, 1]), epochs=3, batch_size=4, verbose=0)
        return model.get_weights()

    for fused, keras_weights in zip(trained("fused"), trained("keras"), strict=True):
        np.testing.assert_allclose(fused, keras_weights, atol=1e-4)


def test_fused_refuses_recurrent_dropout_with_one_clear_line_and_leaves_a_gru_as_it_is():
    with pytest.raises(ValueError, match="no recurrent dropout"):
        recurrent_layer("LSTM", 4, implementation="fused", recurrent_dropout=0.2)
    ids = keras.Input(shape=(None,), dtype="int32")
    x = keras.layers.Embedding(12, 6, mask_zero=True)(ids)
    gru = recurrent_layer("GRU", 4, implementation="fused", name="gru_1")
    model = keras.Model(ids, gru(x))
    assert type(gru) is keras.layers.GRU          # no fused GRU kernel exists in TensorFlow
    assert recurrent_kernels(model) == {"gru_1": "keras loop"}


def test_an_empty_row_gets_the_unknown_word_id_and_other_rows_are_untouched():
    ids = np.array([[0, 0, 0], [4, 5, 0], [0, 0, 0], [7, 0, 0]], dtype="int32")
    out = keras.ops.convert_to_numpy(ensure_token(ids))
    np.testing.assert_array_equal(out, [[1, 0, 0], [4, 5, 0], [1, 0, 0], [7, 0, 0]])
    layer_out = keras.ops.convert_to_numpy(EnsureToken()(ids))
    np.testing.assert_array_equal(layer_out, out)
    assert (out != 0).any(axis=1).all()
