"""Word attributions by integrated gradients: completeness, the deciding word, batch invariance,
the log-odds they explain, and clear errors for models that cannot be explained."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from fixtures import BAD, GOOD, VECTORIZER, builder, neural_params, toy_corpus

from textrnn.config import TfidfLogregParams
from textrnn.errors import UserError
from textrnn.layers import Temperature
from textrnn.seeding import seed_everything
from textrnn.sentiment import models as sentiment_models
from textrnn.sentiment.explain import COMPLETENESS_TOLERANCE, UNKNOWN_WORD, Explainer, explain
from textrnn.sentiment.text import tokens

CLASSES = ["negative", "positive"]
# One sentiment word each, among filler words the toy corpus uses: it alone decides the label.
PROBES = ["the food was really great", "it was awful and the phone", "superb", "the film was poor",
          "very lovely film and it", "the phone was broken"]
DECIDING = ["great", "awful", "superb", "poor", "lovely", "broken"]


def _train(name: str, tmp_path_factory, **changes) -> keras.Model:
    """A model of params.yaml's kind ``name`` fitted on the toy corpus: the end-to-end Keras
    model (text -> vectorizer -> network)."""
    seed_everything(0)
    texts, labels = toy_corpus(96, seed=0)
    params = neural_params(epochs=6, patience=6, batch_size=16, embedding_dim=8, units=8,
                           dropout=0.0, **changes)
    model = builder("sentiment", name)(params, vectorizer=VECTORIZER)
    model.fit(texts, labels, texts[:16], labels[:16], seed=0,
              work_dir=tmp_path_factory.mktemp(name), verbose=0)
    return model.model


def _with_temperature(model: keras.Model, temperature: float) -> keras.Model:
    """``model`` ending in a Temperature layer, as the calibrated saved models do."""
    scaled = Temperature(temperature, name="temperature")(model.outputs[0])
    return keras.Model(model.inputs[0], scaled, name=model.name)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, keras.Model]:
    trained = {"lstm": _train("lstm", tmp_path_factory),
               "bilstm": _train("lstm", tmp_path_factory, bidirectional=True),
               "dnn": _train("dnn", tmp_path_factory, pooling="mean", dense_units=0,
                             learning_rate=0.05),
               "gru": _train("gru", tmp_path_factory)}
    trained["lstm_temperature"] = _with_temperature(trained["lstm"], 2.5)
    pair = sentiment_models.ensemble({"dnn": trained["dnn"], "gru": trained["gru"]})
    trained["ensemble_temperature"] = _with_temperature(pair, 0.7)
    return trained


def _probabilities(model: keras.Model, texts: list[str]) -> np.ndarray:
    return sentiment_models.predict_keras(model, texts)                    # (n, n_classes)


def _assert_is_logit(value: float, p: float) -> None:
    """``value`` is ``log(p / (1 - p))``; a float32 probability within 1e-4 of 1 only bounds it
    (the explanation's log-odds come from the logits, so they stay finite and exact)."""
    if p < 1 - 1e-4:
        assert value == pytest.approx(np.log(p / (1 - p)), abs=2e-3)
    else:
        assert value > np.log((1 - 1e-4) / 1e-4)


@pytest.mark.parametrize("name", ["lstm", "lstm_temperature", "bilstm", "dnn", "gru",
                                  "ensemble_temperature"])
def test_attributions_add_up_and_the_deciding_word_weighs_most(models, name):
    model = models[name]
    explanations = Explainer(model, CLASSES)(PROBES)
    probabilities = _probabilities(model, PROBES)
    for text, word, explanation, row in zip(PROBES, DECIDING, explanations, probabilities,
                                            strict=True):
        assert explanation.tokens == tokens(text)
        assert abs(explanation.completeness_gap) <= COMPLETENESS_TOLERANCE, (text, explanation)
        # what the service returns: the label, and the value is the logit of its probability
        assert explanation.label == CLASSES[int(row.argmax())]
        assert explanation.label == ("positive" if word in GOOD else "negative"), text
        _assert_is_logit(explanation.value, row.max())
        top = int(np.argmax(explanation.scores))
        assert explanation.tokens[top] == word and explanation.scores[top] > 0, explanation


def test_the_temperature_divides_value_and_attributions(models):
    plain, scaled = (Explainer(models[name], CLASSES)(PROBES[:2])
                     for name in ("lstm", "lstm_temperature"))
    for one, hot in zip(plain, scaled, strict=True):
        assert hot.value == pytest.approx(one.value / 2.5, rel=1e-4)
        np.testing.assert_allclose(hot.scores, np.array(one.scores) / 2.5, rtol=0.05, atol=0.02)


def test_a_text_alone_and_in_a_batch_get_the_same_attributions(models):
    explainer = Explainer(models["ensemble_temperature"], CLASSES)
    alone = explainer([PROBES[0]])[0]
    batch = explainer(["a much longer text " * 3 + BAD[0], PROBES[0], ""])
    assert batch[1] == alone


def test_the_other_class_gets_the_opposite_attributions(models):
    explainer = Explainer(models["gru"], CLASSES)
    towards = explainer(PROBES[:2])
    against = explainer(PROBES[:2], labels=["negative", "positive"])
    for one, other in zip(towards, against, strict=True):
        assert other.label != one.label
        assert other.value == pytest.approx(-one.value, abs=1e-5)
        np.testing.assert_allclose(other.scores, -np.array(one.scores), atol=1e-5)


def test_texts_without_words_and_over_the_length_limit(models):
    explainer = Explainer(models["lstm"], CLASSES)
    empty, punctuation, long = explainer(["", "?! ...", " ".join(["great"] * 30)])
    unknown = Explainer(models["lstm"], CLASSES)(["zzqxw"])[0]      # a word never seen
    for nothing in (empty, punctuation):       # read as one unknown word, as the model does
        assert nothing.tokens == [UNKNOWN_WORD] and len(nothing.scores) == 1
        assert nothing.value == pytest.approx(unknown.value, abs=1e-5)
        assert abs(nothing.completeness_gap) <= COMPLETENESS_TOLERANCE
        assert nothing.label == unknown.label
    assert long.tokens == ["great"] * VECTORIZER.max_length        # what the model read
    assert abs(long.completeness_gap) <= COMPLETENESS_TOLERANCE


def test_three_classes_explain_the_log_odds_of_the_returned_probability(tmp_path_factory):
    seed_everything(0)
    texts, labels = toy_corpus(96, seed=0)
    labels = [label if i % 3 else "neutral" for i, label in enumerate(labels)]
    model = builder("sentiment", "dnn")(
        neural_params(epochs=4, pooling="mean", dense_units=0, dropout=0.0),
        vectorizer=VECTORIZER)
    model.fit(texts, labels, texts[:16], labels[:16], seed=0,
              work_dir=tmp_path_factory.mktemp("three"), verbose=0)
    [explanation] = explain(model.model, PROBES[:1], classes=model.classes)
    row = model.predict_proba(PROBES[:1])[0]
    assert explanation.label == model.classes[int(row.argmax())]
    _assert_is_logit(explanation.value, row.max())
    assert abs(explanation.completeness_gap) <= COMPLETENESS_TOLERANCE


def test_models_that_cannot_be_explained_are_clear_errors(models, tmp_path):
    tfidf = builder("sentiment", "tfidf_logreg")(
        TfidfLogregParams(ngram_max=1, min_df=1, C=1.0, sublinear_tf=True),
        vectorizer=VECTORIZER)
    texts, labels = toy_corpus(16, seed=0)
    tfidf.fit(texts, labels, texts, labels, seed=0, work_dir=tmp_path, verbose=0)
    with pytest.raises(UserError, match="need a neural .Keras. sentiment model, not Pipeline"):
        explain(tfidf.estimator, PROBES, classes=CLASSES)

    text = keras.Input(shape=(), dtype="string")
    vectorizer = keras.layers.TextVectorization(max_tokens=20, output_sequence_length=4)
    vectorizer.adapt(np.array(texts))
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(20, 4)(vectorizer(text)))
    foreign = keras.Model(text, keras.layers.Dense(2, activation="softmax")(pooled))
    with pytest.raises(UserError, match="has no 'vectorizer' layer"):
        explain(foreign, PROBES, classes=CLASSES)
    with pytest.raises(UserError, match="outputs \\[2\\] classes, but 3 class names"):
        Explainer(models["dnn"], ["a", "b", "c"])
