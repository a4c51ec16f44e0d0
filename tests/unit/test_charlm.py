"""Character LM library: vocabulary, training windows, models, exact perplexity, save/load."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from textrnn.catalog import get_kind, kinds
from textrnn.charlm import train as charlm_train
from textrnn.charlm.model import build_charlm, state_model
from textrnn.config import CharlmNeuralParams
from textrnn.errors import DataError, ParamsError, UserError

TEXT = "En un lugar de la Mancha, de cuyo nombre no quiero acordarme, no ha mucho tiempo. " * 20


def neural_params(**overrides) -> CharlmNeuralParams:
    values = {"embedding_dim": 8, "units": 16, "layers": 1, "dropout": 0.0, "optimizer": "adam",
              "learning_rate": 0.01, "clipnorm": 1.0, "batch_size": 8, "epochs": 1,
              "patience": 1, "steps_per_epoch": 0}
    return CharlmNeuralParams(**{**values, **overrides})


def tiny_model(kind: str = "lstm", vocab_size: int = 12, seed: int = 0, **overrides) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return build_charlm(get_kind("charlm", kind), neural_params(**overrides), vocab_size=vocab_size)


# ----------------------------------------------------------------------------- vocabulary


def test_vocab_comes_from_the_given_text_with_unknown_first():
    vocab = charlm_train.build_vocab("banana!")
    assert vocab == [charlm_train.UNKNOWN, "!", "a", "b", "n"]
    # a character the training text never had maps to the unknown token, id 0
    assert charlm_train.encode("nab?", vocab).tolist() == [4, 2, 3, 0]
    assert charlm_train.decode([3, 2, 4], vocab) == "ban"


def test_empty_training_text_is_a_data_error():
    with pytest.raises(DataError, match="empty"):
        charlm_train.build_vocab("")


# ----------------------------------------------------------------------------- windows


def test_training_windows_are_next_character_targets_and_sparse():
    vocab = charlm_train.build_vocab(TEXT)
    ids = charlm_train.encode(TEXT, vocab)
    ds = charlm_train.train_dataset(ids, sequence_length=10, batch_size=4, seed=1,
                                    epoch=tf.Variable(0, dtype=tf.int64))
    x, y = next(iter(ds))
    assert x.shape == (4, 10) and y.shape == (4, 10)
    assert x.dtype == y.dtype == "int32"                         # ids, not one-hot
    x, y = x.numpy(), y.numpy()
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])           # y is x shifted by one
    for row_x, row_y in zip(x, y, strict=True):                  # and both come from the text
        window = charlm_train.decode(row_x, vocab) + charlm_train.decode(row_y[-1:], vocab)
        assert window in TEXT


def test_an_epoch_is_one_pass_and_each_epoch_is_cut_differently():
    vocab = charlm_train.build_vocab(TEXT)
    ids = charlm_train.encode(TEXT, vocab)
    counter = charlm_train.EpochCounter()
    ds = charlm_train.train_dataset(ids, sequence_length=10, batch_size=4, seed=1,
                                    epoch=counter.epoch)
    first = [x.numpy() for x, _ in ds]
    counter.on_epoch_begin(1)
    second = [x.numpy() for x, _ in ds]
    assert len(first) == len(second) == (len(ids) - 10) // 10 // 4
    assert not all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    # epoch k gets the same batches in a fresh pipeline (a rerun, or a resumed run)
    fresh = charlm_train.EpochCounter()
    again = charlm_train.train_dataset(ids, sequence_length=10, batch_size=4, seed=1,
                                       epoch=fresh.epoch)
    fresh.on_epoch_begin(1)
    assert all(np.array_equal(a, b) for a, (b, _) in zip(second, again, strict=True))
    fresh.on_epoch_begin(0)
    assert all(np.array_equal(a, b) for a, (b, _) in zip(first, again, strict=True))
    short = charlm_train.train_dataset(ids, sequence_length=10, batch_size=4, seed=1,
                                       epoch=counter.epoch, steps_per_epoch=3)
    assert len(list(short)) == 3


def test_text_too_short_for_a_batch_is_a_data_error():
    with pytest.raises(DataError, match="too short"):
        charlm_train.train_dataset(np.arange(50, dtype=np.int32), sequence_length=10,
                                   batch_size=8, seed=0, epoch=tf.Variable(0, dtype=tf.int64))


# ----------------------------------------------------------------------------- models


@pytest.mark.parametrize("kind,layer_class", [("simple_rnn", keras.layers.SimpleRNN),
                                              ("lstm", keras.layers.LSTM),
                                              ("gru", keras.layers.GRU)])
def test_builders_give_logits_per_position(kind, layer_class):
    model = tiny_model(kind, vocab_size=12, layers=2, dropout=0.2)
    recurrent = [layer for layer in model.layers if isinstance(layer, keras.layers.RNN)]
    assert [type(layer) for layer in recurrent] == [layer_class, layer_class]
    assert all(layer.recurrent_dropout == 0 for layer in recurrent)   # fused kernels stay on
    assert sum(isinstance(layer, keras.layers.Dropout) for layer in model.layers) == 2
    out = model(np.zeros((3, 7), "int32"))
    assert tuple(out.shape) == (3, 7, 12)                        # (batch, time, vocab)


def test_charlm_kinds_come_from_the_one_catalog():
    assert sorted(kinds("charlm")) == ["gru", "lstm", "simple_rnn"]
    assert all(kind.recurrent for kind in kinds("charlm").values())
    with pytest.raises(ParamsError, match="known kinds: gru, lstm, simple_rnn"):
        get_kind("charlm", "transformer")


def test_training_makes_the_loss_fall(tmp_path):
    vocab = charlm_train.build_vocab(TEXT)
    ids = charlm_train.encode(TEXT, vocab)
    keras.utils.set_random_seed(0)
    _, history = charlm_train.fit_model(
        get_kind("charlm", "gru"), neural_params(epochs=3, patience=3, learning_rate=0.02),
        vocab_size=len(vocab), train_ids=ids, val_ids=ids[:400], sequence_length=20, seed=0,
        work_dir=tmp_path, verbose=0)
    assert history["val_perplexity"][-1] < 0.7 * history["val_perplexity"][0]
    assert history["val_perplexity"][0] == pytest.approx(math.exp(history["val_loss"][0]))


# ----------------------------------------------------------------------------- perplexity


def test_a_uniform_model_has_perplexity_equal_to_the_vocabulary_size():
    model = tiny_model("lstm", vocab_size=17)
    logits = model.get_layer("logits")
    logits.set_weights([np.zeros_like(w) for w in logits.get_weights()])   # every logit 0
    ids = np.random.default_rng(0).integers(0, 17, size=1001).astype("int32")
    result = charlm_train.exact_perplexity(charlm_train.StateFunction(model), ids, streams=4,
                                           chunk_length=64)
    assert result["characters"] == 1000                          # all but the first character
    assert result["perplexity"] == pytest.approx(17, rel=1e-5)
    assert result["bits_per_char"] == pytest.approx(math.log2(17), rel=1e-5)


@pytest.mark.parametrize("kind", ["simple_rnn", "lstm", "gru"])
def test_chunked_scoring_with_carried_state_equals_one_pass_over_the_text(kind):
    model = tiny_model(kind, vocab_size=12, layers=2)
    ids = np.random.default_rng(1).integers(0, 12, size=120).astype("int32")
    logits = keras.ops.convert_to_numpy(model(ids[None, :-1]))[0].astype("float64")
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -log_probs[np.arange(119), ids[1:]].sum()
    total, count = charlm_train.total_nll(charlm_train.StateFunction(model), ids, streams=1,
                                          chunk_length=13)
    assert count == 119
    assert total == pytest.approx(expected, rel=1e-5)


def test_every_character_is_scored_once_whatever_the_number_of_streams():
    model = tiny_model("gru", vocab_size=12)
    logits = model.get_layer("logits")
    kernel, bias = logits.get_weights()
    bias = np.log(np.arange(1, 13, dtype="float32"))            # p(i) proportional to i + 1
    logits.set_weights([np.zeros_like(kernel), bias])
    ids = np.random.default_rng(2).integers(0, 12, size=101).astype("int32")
    expected = -(bias[ids[1:]] - np.log(np.exp(bias).sum())).sum()
    for streams in (1, 3, 7, 100, 500):
        total, count = charlm_train.total_nll(charlm_train.StateFunction(model), ids,
                                              streams=streams, chunk_length=9)
        assert count == 100
        assert total == pytest.approx(expected, rel=1e-5)


# ----------------------------------------------------------------------------- save / load


def test_saved_model_loads_back_with_its_vocab(tmp_path):
    vocab = charlm_train.build_vocab("abcdefghijk")
    model = tiny_model("lstm", vocab_size=len(vocab))
    charlm_train.save(tmp_path, model, vocab, {"task": "charlm", "model": "lstm"})
    loaded, loaded_vocab, meta = charlm_train.load(tmp_path)
    assert loaded_vocab == vocab and meta["model"] == "lstm"
    ids = np.array([[1, 2, 3]], "int32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(ids)),
                               keras.ops.convert_to_numpy(model(ids)), rtol=1e-6)
    _, sizes = state_model(loaded)
    assert sizes == [16, 16]                                     # LSTM: h and c


def test_loading_a_model_with_the_wrong_vocab_is_a_user_error(tmp_path):
    model = tiny_model("gru", vocab_size=5)
    charlm_train.save(tmp_path, model, charlm_train.build_vocab("abcdefg"), {})
    with pytest.raises(UserError, match="does not match"):
        charlm_train.load(tmp_path)
    with pytest.raises(UserError, match="missing"):
        charlm_train.load(tmp_path / "nowhere")
