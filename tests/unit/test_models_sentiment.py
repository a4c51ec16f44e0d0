"""Sentiment model registry, end-to-end saved models, masking and bucketing."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from fixtures import (
    VECTORIZER,
    builder,
    default_models,
    kind_of,
    neural_params,
    toy_corpus,
    variant_changes,
)

from textrnn import training
from textrnn.catalog import get_kind
from textrnn.config import DummyParams, TfidfLogregParams
from textrnn.errors import DataError, ParamsError
from textrnn.layers import RowEmbedding
from textrnn.seeding import seed_everything
from textrnn.sentiment import models as sentiment_models
from textrnn.sentiment.batching import bucketed_dataset, real_token_share
from textrnn.sentiment.text import make_vectorizer, sequence_lengths, vectorize

# params.yaml's default models (a kind each, from the catalog): what these tests build
ALL = tuple(default_models("sentiment"))
NEURAL = tuple(name for name in ALL if kind_of("sentiment", name).neural)
PARAMS = {
    "dummy": DummyParams(strategy="prior"),
    "tfidf_logreg": TfidfLogregParams(ngram_max=2, min_df=1, C=1.0, sublinear_tf=True),
    **{name: neural_params(**variant_changes(name)) for name in NEURAL},
}


def test_unknown_kinds_are_clear_errors():
    with pytest.raises(ParamsError, match="known kinds: dnn, dummy, gru, lm_lstm, lstm, "
                                          "simple_rnn, tfidf_logreg"):
        get_kind("sentiment", "transformer")
    with pytest.raises(ParamsError, match="known kinds: $"):
        get_kind("vision", "lstm")


@pytest.mark.parametrize("name", ALL)
def test_every_model_trains_saves_and_loads_with_identical_predictions(name, tmp_path):
    seed_everything(0)
    texts, labels = toy_corpus(32, seed=0)            # 32 rows / batch 16 = two steps
    val_texts, val_labels = toy_corpus(16, seed=1)
    model = builder("sentiment", name)(PARAMS[name], vectorizer=VECTORIZER)
    history = model.fit(texts, labels, val_texts, val_labels, seed=0, work_dir=tmp_path / "work",
                        verbose=0)
    assert model.classes == ["negative", "positive"]
    if name in NEURAL:
        assert len(history["loss"]) == 1
    (tmp_path / "model").mkdir()
    saved = model.save(tmp_path / "model")
    (tmp_path / "model" / "meta.json").write_text('{"classes": ["negative", "positive"]}')

    probe = ["great film", "", "words never seen before", "awful " * 40, "The FOOD, was poor!"]
    expected = model.predict_proba(probe)
    assert expected.shape == (len(probe), 2)
    np.testing.assert_allclose(expected.sum(axis=1), 1.0, rtol=1e-5)
    loaded = sentiment_models.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.predict_proba(probe), expected)
    if name in NEURAL:  # the plain Keras loader, in safe mode, on a batch of raw strings
        raw = keras.saving.load_model(saved, safe_mode=True)
        out = keras.ops.convert_to_numpy(raw(np.asarray(probe, dtype=object)))
        np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-7)


def test_head_follows_the_number_of_classes(tmp_path):
    seed_everything(0)
    texts, labels = toy_corpus(48, seed=0)
    labels = [label if i % 3 else "neutral" for i, label in enumerate(labels)]
    model = builder("sentiment", "gru")(neural_params(), vectorizer=VECTORIZER)
    model.fit(texts, labels, texts[:12], labels[:12], seed=0, work_dir=tmp_path, verbose=0)
    assert model.classes == ["negative", "neutral", "positive"]
    assert model.predict_proba(["great"]).shape == (1, 3)


def test_loss_falls_and_model_learns_toy_sentiment(tmp_path):
    seed_everything(1)
    texts, labels = toy_corpus(256, seed=2)
    val_texts, val_labels = toy_corpus(64, seed=3)
    model = builder("sentiment", "lstm")(
        neural_params(epochs=6, patience=6, batch_size=32, embedding_dim=16, units=16),
        vectorizer=VECTORIZER)
    history = model.fit(texts, labels, val_texts, val_labels, seed=1, work_dir=tmp_path, verbose=0)
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    predicted = np.array(model.classes)[model.predict_proba(val_texts).argmax(axis=1)]
    assert (predicted == np.array(val_labels)).mean() >= 0.9


@pytest.mark.parametrize("kind", NEURAL)
def test_padding_never_reaches_the_output(kind):
    """Same tokens, 3 or 40 trailing pads: identical probabilities (masking end to end)."""
    seed_everything(0)
    network = sentiment_models.build_network(
        kind_of("sentiment", kind),
        neural_params(layers=2, pooling="max_mean", **variant_changes(kind)),
        vocab_size=50, n_classes=2)
    short = np.array([[5, 9, 3]], dtype="int32")
    padded = np.pad(short, ((0, 0), (0, 40)))
    np.testing.assert_allclose(network(padded, training=False), network(short, training=False),
                               rtol=1e-5, atol=1e-6)


def test_lstm_learns_first_token_task_padded_to_100():
    """The label is the FIRST token of a sequence post-padded to 100: with masking the final
    state carries it; without masking, 80+ padding steps wash it out (an LSTM stays near 50%)."""
    seed_everything(0)
    rng = np.random.default_rng(0)
    n, vocab = 1200, 30
    lengths = rng.integers(5, 21, size=n)
    labels = rng.integers(0, 2, size=n).astype("int32")
    ids = np.zeros((n, 100), dtype="int32")
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(4, vocab, size=length)
        ids[row, 0] = 2 + labels[row]                       # token 2 -> class 0, 3 -> class 1
    params = neural_params(embedding_dim=8, units=16, dense_units=0, dropout=0.0, l2=0.0,
                           pooling="last", learning_rate=0.01)
    network = sentiment_models.build_network(get_kind("sentiment", "lstm"), params,
                                             vocab_size=vocab, n_classes=2)
    network.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                    metrics=["accuracy"])
    network.fit(ids[:1000], labels[:1000], batch_size=50, epochs=6, verbose=0, shuffle=True)
    accuracy = network.evaluate(ids[1000:], labels[1000:], verbose=0)[1]
    assert accuracy >= 0.95


def test_vectorizer_is_fitted_on_train_only():
    vectorizer = make_vectorizer(["good film", "bad film"], max_tokens=50, max_length=5)
    ids = vectorize(vectorizer, ["good unseenword", ""])
    assert ids[0, 1] == 1            # out-of-vocabulary index: 'unseenword' is not learned
    assert sequence_lengths(ids).tolist() == [2, 0]


def test_no_batch_of_training_or_serving_holds_a_text_without_a_token(tmp_path):
    """Texts that standardise to nothing ("", "!!!") read as one unknown word everywhere: every
    bucketed training batch reaches the embedding (and so every recurrent layer) with a token in
    each row, and the saved end-to-end model the service calls scores them as an unseen word (a
    fully masked row would stop cuDNN's kernel on a GPU)."""
    seed_everything(0)
    texts, labels = toy_corpus(64, seed=4)
    texts = [*texts, "", "!!!", " ... ", "?"]
    labels = [*labels, "positive", "negative", "positive", "negative"]
    model = builder("sentiment", "lstm")(neural_params(epochs=2, patience=2), vectorizer=VECTORIZER)
    model.fit(texts, labels, texts, labels, seed=0, work_dir=tmp_path, verbose=0)
    vectorizer = model.model.get_layer("vectorizer")    # vectorizer -> network -> temperature
    network = next(layer for layer in model.model.layers if isinstance(layer, keras.Model))
    assert network.layers[1].name == "ensure_token"               # first layer after the input
    reaches_embedding = keras.Model(network.inputs, network.get_layer("ensure_token").output)
    ids = vectorize(vectorizer, texts)
    assert not (ids != 0).any(axis=1).all()                       # empty rows before the network
    batches = bucketed_dataset(ids, np.zeros(len(texts), "int32"), batch_size=8, shuffle=True,
                               seed=0)
    for batch, _ in batches.as_numpy_iterator():
        assert (keras.ops.convert_to_numpy(reaches_embedding(batch)) != 0).any(axis=1).all()
    probs = model.predict_proba(["", "!!!", "zzqx", "great film"])
    np.testing.assert_allclose(probs[0], probs[2], atol=1e-6)     # "" = an unknown word
    np.testing.assert_allclose(probs[1], probs[2], atol=1e-6)


def _epochs(ds, count):
    """The labels of each batch, for ``count`` passes over ``ds`` (labels identify rows)."""
    return [[b.tolist() for _, b in ds.as_numpy_iterator()] for _ in range(count)]


def test_bucketed_batches_cover_every_row_once_and_hold_little_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 60, size=500)                 # 0: an empty text
    ids = np.zeros((500, 64), dtype="int32")
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(2, 100, size=length)
    labels = np.arange(500, dtype="int32")                  # labels identify rows
    ds = bucketed_dataset(ids, labels, batch_size=16, shuffle=True, seed=3)
    assert ds.cardinality().numpy() == 32                   # Keras sees the epoch's length
    first, widths = [], []                                  # the first epoch's batches
    for batch_ids, batch_labels in ds.as_numpy_iterator():
        # padded to its own longest row, never to zero steps
        assert batch_ids.shape[1] == max(sequence_lengths(batch_ids).max(), 1)
        np.testing.assert_array_equal(batch_ids, ids[batch_labels, :batch_ids.shape[1]])
        first.append(batch_labels.tolist())
        widths.append(batch_ids.shape[1])
    seen = [row for batch in first for row in batch]
    assert sorted(seen) == list(range(500))
    assert [len(batch) for batch in first] == [16] * 31 + [4]  # only the last is short...
    steps = np.maximum(lengths, 1)                          # an empty text takes one step
    assert steps[seen[-4:]].max() <= np.sort(steps)[3]      # ...and holds the shortest rows
    assert len(set(widths)) > 5                             # batches of many different widths

    second = _epochs(ds, 1)[0]
    assert real_token_share(ds) >= 0.9                      # (a third pass)
    assert first != second                                  # each epoch has its own order
    assert sorted(map(sorted, first)) != sorted(map(sorted, second))  # and its own batches
    fresh = bucketed_dataset(ids, labels, batch_size=16, shuffle=True, seed=3)
    assert _epochs(fresh, 2) == [first, second]             # deterministic for a seed
    other = bucketed_dataset(ids, labels, batch_size=16, shuffle=True, seed=4)
    assert _epochs(other, 1)[0] != first


def test_bucketed_validation_batches_keep_one_order_longest_first():
    ids = np.zeros((7, 5), dtype="int32")
    for row, length in enumerate([2, 5, 0, 3, 3, 1, 4]):
        ids[row, :length] = 7
    ds = bucketed_dataset(ids, np.arange(7, dtype="int32"), batch_size=3, shuffle=False, seed=0)
    first, second = _epochs(ds, 2)
    assert first == second == [[1, 6, 3], [4, 0, 2], [5]]
    assert [b.shape[1] for b, _ in ds.as_numpy_iterator()] == [5, 3, 1]


def test_bucketed_pipeline_starts_an_epoch_without_python_functions():
    """Keras makes a new iterator at every epoch's start and end: a pipeline step that runs
    a traced function (map, filter, ...) would be instantiated again each time (~15 ms)."""
    ids = np.ones((40, 6), dtype="int32")
    ds = bucketed_dataset(ids, np.zeros(40, dtype="int32"), batch_size=8, shuffle=True, seed=0)
    from tensorflow.core.framework import graph_pb2

    graph_def = graph_pb2.GraphDef.FromString(ds._as_serialized_graph().numpy())
    # unbatch() brings tf.data's own normaliser, an identity that tf.data short-circuits
    traced = [f.signature.name for f in graph_def.library.function
              if "normalize" not in f.signature.name]
    assert traced == []


@pytest.mark.parametrize("name", ["bilstm", "tfidf_logreg"])
def test_the_service_loads_what_train_saves_in_a_fresh_process(name, tmp_path):
    """The service loads a trained model file on its own (custom layers registered by the
    loader, not by whoever happened to import them first) and answers the same probabilities."""
    import json
    import subprocess
    import sys

    seed_everything(0)
    texts, labels = toy_corpus(32, seed=0)
    model = builder("sentiment", name)(PARAMS[name], vectorizer=VECTORIZER)
    model.fit(texts, labels, texts[:16], labels[:16], seed=0, work_dir=tmp_path / "work", verbose=0)
    folder = tmp_path / "models" / "sentiment" / name / "model"
    folder.mkdir(parents=True)
    model.save(folder)
    (folder / "meta.json").write_text(json.dumps({"task": "sentiment", "model": name,
                                                  "classes": model.classes}))
    (tmp_path / "models" / "sentiment" / "champion.json").write_text(json.dumps({"model": name}))
    probe = ["great film", "awful food", "words never seen"]
    code = ("import json, sys; from pathlib import Path; from textrnn.serving import load_models; "
            "p, _ = load_models(Path(sys.argv[1])); "
            "print(json.dumps(p.predict_proba(json.loads(sys.argv[2])).tolist()))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "models"), json.dumps(probe)],
                          capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-1500:]
    served = np.array(json.loads(proc.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(served, model.predict_proba(probe), rtol=1e-5, atol=1e-6)


def _save(model, folder, dataset="uci"):
    folder.mkdir(parents=True)
    model.save(folder)
    (folder / "meta.json").write_text(json.dumps({"classes": model.classes, "dataset": dataset}))


def test_load_all_refuses_models_trained_on_other_classes_or_data(tmp_path):
    texts, labels = toy_corpus(24, seed=0)
    three = [label if i % 3 else "neutral" for i, label in enumerate(labels)]
    for name, rows, dataset in (("a", labels, "uci"), ("b", labels, "uci"), ("c", three, "uci"),
                                ("d", labels, "imdb")):
        model = builder("sentiment", "dummy")(PARAMS["dummy"], vectorizer=VECTORIZER)
        model.fit(texts, rows, texts, rows, seed=0, work_dir=tmp_path / "work", verbose=0)
        _save(model, tmp_path / name / "model", dataset)
    def folders(*names):
        return {name: tmp_path / name / "model" for name in names}

    assert list(sentiment_models.load_all(folders("a", "b"))) == ["a", "b"]
    with pytest.raises(DataError, match=r"/c/model was trained on uci classes "
                                        r"\['negative', 'neutral', 'positive'\], "
                                        r"a on uci \['negative', 'positive'\]"):
        sentiment_models.load_all(folders("a", "c"))
    with pytest.raises(DataError, match="/d/model was trained on imdb classes"):
        sentiment_models.load_all(folders("a", "d"))


def test_the_ensemble_is_the_mean_of_its_members_and_saves_as_one_file(tmp_path):
    texts, labels = toy_corpus(32, seed=0)
    for kind in ("dnn", "gru"):
        seed_everything(0)
        model = builder("sentiment", kind)(PARAMS[kind], vectorizer=VECTORIZER)
        model.fit(texts, labels, texts[:16], labels[:16], seed=0, work_dir=tmp_path / kind,
                  verbose=0)
        _save(model, tmp_path / kind / "model")
    members = sentiment_models.load_all({k: tmp_path / k / "model" for k in ("dnn", "gru")})
    combined = sentiment_models.ensemble({n: m.keras_model for n, m in members.items()})
    combined.save(tmp_path / "ensemble.keras")
    probe = ["great film", "", "awful " * 40]
    expected = np.mean([m.predict_proba(probe) for m in members.values()], axis=0)
    back = keras.saving.load_model(tmp_path / "ensemble.keras", safe_mode=True)
    np.testing.assert_allclose(sentiment_models.predict_keras(back, probe), expected,
                               rtol=1e-5, atol=1e-6)


def _twin_networks(kind: str = "lstm") -> tuple[keras.Model, keras.Model]:
    """The default network twice, the second with keras.layers.Embedding, same initial weights."""
    seed_everything(3)
    ours = sentiment_models.build_network(kind_of("sentiment", kind),
                                          neural_params(dropout=0.0, **variant_changes(kind)),
                                          vocab_size=50, n_classes=2)

    def keras_embedding(layer):
        if isinstance(layer, RowEmbedding):
            return keras.layers.Embedding.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    theirs = keras.models.clone_model(ours, clone_function=keras_embedding)
    theirs.set_weights(ours.get_weights())
    return ours, theirs


def test_the_embedding_reads_only_the_batch_rows_and_never_the_whole_table():
    """Keras' Embedding reads the whole table (a 12 MB copy per batch once lazy_adam has made a
    sparse write); ours must gather the rows from the variable itself."""
    import tensorflow as tf

    ours, theirs = _twin_networks()

    def op_types(network):
        layer = network.get_layer("embedding")
        fn = tf.function(layer.call, autograph=False).get_concrete_function(
            tf.TensorSpec([None, None], tf.int32))
        return {op.type for op in fn.graph.get_operations()}

    assert "ResourceGather" in op_types(ours)
    assert "ReadVariableOp" not in op_types(ours)
    assert "ReadVariableOp" in op_types(theirs)       # the copy this layer avoids


def test_the_row_embedding_trains_exactly_like_keras_embedding():
    """Same outputs, mask, gradients and weights after lazy_adam steps: a faster read, not
    another model (the committed metrics did not move when the layer came in)."""
    ours, theirs = _twin_networks()
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 50, size=(64, 7)).astype("int32")
    ids[::3, 4:] = 0                                  # padded rows: the mask must agree too
    labels = rng.integers(0, 2, size=64).astype("int32")
    np.testing.assert_array_equal(ours.get_layer("embedding").compute_mask(ids).numpy(),
                                  theirs.get_layer("embedding").compute_mask(ids).numpy())
    np.testing.assert_array_equal(ours.predict(ids, verbose=0), theirs.predict(ids, verbose=0))
    for network in (ours, theirs):
        seed_everything(5)
        training.compile_model(network, neural_params(), loss="sparse_categorical_crossentropy",
                               steps_per_execution=2)
        network.fit(ids, labels, batch_size=16, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(ours.get_weights(), theirs.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_model_with_the_row_embedding_saves_and_loads_in_safe_mode(tmp_path):
    ours, _ = _twin_networks("gru")
    path = tmp_path / "net.keras"
    ours.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.get_layer("embedding"), RowEmbedding)
    ids = np.array([[3, 4, 0, 0], [5, 6, 7, 8]], dtype="int32")
    np.testing.assert_array_equal(loaded.predict(ids, verbose=0), ours.predict(ids, verbose=0))
