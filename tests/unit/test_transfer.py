"""Kind lm_lstm: the pretrained language model fine-tuned into a classifier, with gradual
unfreezing and per-layer learning rates, saved end to end like every other sentiment model."""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import ROOT
from fixtures import VECTORIZER, toy_corpus

from textrnn import catalog
from textrnn.config import PretrainParams, TransferParams
from textrnn.sentiment import transfer


def transfer_params(**changes) -> TransferParams:
    base = dict(optimizer="lazy_adam", learning_rate=0.01, clipnorm=1.0, batch_size=16, epochs=3,
                patience=3, pretrained=True, lm_epochs=1, lm_learning_rate=0.005, dropout=0.1,
                dense_units=8, activation="relu", pooling="max_mean", unfreeze_every=1,
                lr_decay=2.6, steps_per_execution=2)
    return TransferParams(**{**base, **changes})


def lm_params(**changes) -> PretrainParams:
    base = dict(corpus="imdb", vocabulary=200, embedding_dim=8, units=8, layers=1, dropout=0.0,
                sampled=0, sequence_length=8, batch_size=8, learning_rate=0.01, clipnorm=1.0,
                train_tokens=2000, val_reviews=10, eval_every=20)
    return PretrainParams(**{**base, **changes})


def snapshot(network: keras.Model) -> dict[str, list[np.ndarray]]:
    return {layer.name: [w.copy() for w in layer.get_weights()]
            for layer in network.layers if layer.get_weights()}


def moved(before, after, name: str) -> bool:
    return any(not np.array_equal(a, b) for a, b in zip(before[name], after[name], strict=True))


def test_the_schedule_unfreezes_from_the_top_at_falling_rates():
    p = transfer_params(unfreeze_every=2, lr_decay=2.0)
    assert transfer.unfreeze_schedule(2, p) == {
        "lm_lstm_2": [0.5, 2], "lm_lstm_1": [0.25, 4], "embedding": [0.125, 6]}
    assert transfer.unfreeze_schedule(1, transfer_params(unfreeze_every=0, lr_decay=1.0)) == {
        "lm_lstm_1": [1.0, 0], "embedding": [1.0, 0]}


def test_gradual_unfreezing_trains_the_head_alone_then_one_group_more_per_epoch(tmp_path):
    """Epoch 0 moves the head only; epoch 1 the top LSTM too; epoch 2 the embedding too."""
    from textrnn.sentiment.batching import bucketed_dataset

    p = transfer_params(unfreeze_every=1, dropout=0.0)
    network = transfer.build_classifier(None, p, vocab_size=30, embedding_dim=4, units=[4],
                                        n_classes=2)
    network.compile(optimizer=transfer.LayerwiseAdam(schedule=transfer.unfreeze_schedule(1, p),
                                                     learning_rate=0.05),
                    loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    ids = rng.integers(2, 30, size=(64, 6)).astype("int32")
    data = bucketed_dataset(ids, (ids[:, 0] % 2).astype("int32"), batch_size=16, shuffle=True,
                            seed=0)
    seen = [snapshot(network)]
    for epoch in range(3):
        network.fit(data, initial_epoch=epoch, epochs=epoch + 1, verbose=0,
                    callbacks=[transfer.UnfreezeEpoch()])
        seen.append(snapshot(network))
    changed = [{name for name in seen[0] if moved(seen[i], seen[i + 1], name)} for i in range(3)]
    assert changed[0] == {"probs", "head"}
    assert changed[1] == {"probs", "head", "lm_lstm_1"}
    assert changed[2] == {"probs", "head", "lm_lstm_1", "embedding"}


@pytest.fixture(scope="module")
def language_model(tmp_path_factory):
    """A tiny word LM on the task's words, saved as pretrain_lm saves it (untrained: what is
    tested here is what the classifier does with it; test_wordlm tests the training)."""
    from textrnn import wordlm

    texts, _ = toy_corpus(400, seed=3)
    params = lm_params()
    vocab = wordlm.build_vocabulary(texts, [], params.vocabulary)
    keras.utils.set_random_seed(0)
    lm = wordlm.build_lm(len(vocab), params)
    folder = tmp_path_factory.mktemp("lm")
    wordlm.save(folder / "lm", lm, vocab, {"params": params.model_dump()})
    return folder / "lm", lm, vocab


def _fit(lm_dir, tmp_path, **changes):
    kind = catalog.get_kind("sentiment", "lm_lstm")
    model = kind.build(transfer_params(**changes), vectorizer=VECTORIZER, lm_dir=lm_dir)
    train, train_labels = toy_corpus(300, seed=1)
    val, val_labels = toy_corpus(80, seed=2)
    history = model.fit(train, train_labels, val, val_labels, seed=0, work_dir=tmp_path,
                        verbose=0)
    return model, history, val, val_labels


def test_the_classifier_starts_from_the_language_models_weights_and_learns(language_model,
                                                                         tmp_path):
    lm_dir, lm, vocab = language_model
    p = transfer_params()
    network = transfer.build_classifier(lm, p, vocab_size=len(vocab), embedding_dim=8,
                                        units=[8], n_classes=2)
    for name in ("embedding", "lm_lstm_1"):
        for mine, theirs in zip(network.get_layer(name).get_weights(),
                                lm.get_layer(name).get_weights(), strict=True):
            np.testing.assert_array_equal(mine, theirs)

    # On this toy data every sentiment word fits every context, so a language model cannot
    # tell them apart: the test trains every layer from the start (the schedule is tested above)
    model, history, val, val_labels = _fit(lm_dir, tmp_path, epochs=8, unfreeze_every=0,
                                           learning_rate=0.02)
    assert model.lm_history and "val_perplexity" in model.lm_history[-1]
    predicted = np.asarray(model.classes)[model.predict_proba(val).argmax(1)]
    assert (predicted == np.asarray(val_labels)).mean() > 0.8
    assert 1 <= len(history["val_accuracy"]) <= 8


def test_the_saved_model_takes_raw_strings_in_a_process_that_imports_only_layers(
        language_model, tmp_path):
    lm_dir, _, _ = language_model
    model, _, val, _ = _fit(lm_dir, tmp_path / "work", epochs=1, lm_epochs=0)
    path = model.save(tmp_path)
    expected = model.predict_proba(val[:5])
    script = ("import json, sys, numpy as np, keras, textrnn.layers\n"
              f"m = keras.saving.load_model({str(path)!r}, safe_mode=True)\n"
              f"texts = np.asarray({json.dumps(val[:5])}, dtype=object)\n"
              "print(json.dumps(keras.ops.convert_to_numpy(m(texts)).tolist()))\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin"})
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_allclose(json.loads(proc.stdout.strip().splitlines()[-1]), expected,
                               atol=1e-5)


def test_without_pretraining_the_same_network_starts_random(language_model, tmp_path):
    lm_dir, lm, _ = language_model
    model, _, _, _ = _fit(lm_dir, tmp_path, epochs=1, pretrained=False, lm_epochs=0)
    assert model.lm_history == []
    inner = [layer for layer in model.model.layers if isinstance(layer, keras.Model)][0]
    assert not np.allclose(inner.get_layer("embedding").get_weights()[0],
                           lm.get_layer("embedding").get_weights()[0])
