"""Temperature scaling: fitted on val, kept inside the saved model, never changes a prediction."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from fixtures import VECTORIZER, builder, neural_params, toy_corpus

from textrnn.config import TfidfLogregParams
from textrnn.seeding import seed_everything
from textrnn.sentiment import calibration
from textrnn.sentiment import models as sentiment_models


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _overconfident(n: int, true_temperature: float, seed: int = 0):
    """Labels drawn from softmax(z / T) while the 'model' says softmax(z): over-confident by T."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=4.0, size=(n, 2))
    truth = _softmax(z / true_temperature)
    y = (rng.random(n) < truth[:, 1]).astype(int)
    return y, _softmax(z)


def test_the_fitted_temperature_recovers_the_one_that_made_the_data():
    y, proba = _overconfident(20000, 2.5)
    temperature = calibration.fit_temperature(y, proba)
    assert temperature == pytest.approx(2.5, rel=0.08)
    fixed = calibration.rescale(proba, temperature)
    assert calibration.nll(y, fixed) < calibration.nll(y, proba)
    assert (calibration.expected_calibration_error(y, fixed)
            < calibration.expected_calibration_error(y, proba) / 3)
    np.testing.assert_array_equal(fixed.argmax(axis=1), proba.argmax(axis=1))   # same labels


def test_a_calibrated_model_keeps_its_temperature_near_one_and_a_constant_one_gets_one():
    y, proba = _overconfident(20000, 1.0, seed=1)
    assert calibration.fit_temperature(y, proba) == pytest.approx(1.0, abs=0.08)
    assert calibration.fit_temperature(y, np.full((len(y), 2), 0.5)) == 1.0


def test_rescale_undoes_itself_and_ece_and_brier_match_their_definitions():
    from sklearn.metrics import brier_score_loss

    y, proba = _overconfident(500, 2.0)
    np.testing.assert_allclose(calibration.rescale(calibration.rescale(proba, 3.0), 1 / 3.0),
                               proba, atol=1e-9)
    assert calibration.brier_score(y, proba) == pytest.approx(brier_score_loss(y, proba[:, 1]))
    # two rows at confidence 0.9 (one right), two at 0.6 (both right): |0.5-0.9|/2 + |1-0.6|/2
    p = np.array([[0.1, 0.9], [0.9, 0.1], [0.4, 0.6], [0.6, 0.4]])
    assert calibration.expected_calibration_error(np.array([1, 1, 1, 0]), p) == pytest.approx(0.4)
    rows = calibration.reliability(np.array([1, 1, 1, 0]), p)
    assert [(r["count"], r["accuracy"]) for r in rows] == [(2, 1.0), (2, 0.5)]


def test_bootstrap_intervals_hold_the_point_estimates():
    y, proba = _overconfident(2000, 2.0)
    out = calibration.calibration_metrics(y, calibration.rescale(proba, 2.0), 2.0, samples=200,
                                          confidence=0.95, seed=0)
    assert out["temperature"] == 2.0
    for key in ("ece_before", "ece_after", "brier_before", "brier_after"):
        low, high = out[f"{key}_ci"]
        assert low <= out[key] <= high, key
    assert out["ece_before"] == pytest.approx(calibration.expected_calibration_error(y, proba))
    assert out["ece_change"] == pytest.approx(out["ece_after"] - out["ece_before"])
    assert out["ece_change_ci"][1] < 0          # T = 2 fixes data made over-confident by 2


@pytest.mark.parametrize("name", ["lstm", "tfidf_logreg"])
def test_the_temperature_travels_inside_the_saved_model(name, tmp_path):
    """After set_temperature the model, saved and loaded (Keras in safe mode, skops), returns
    the rescaled probabilities and the very same labels."""
    seed_everything(0)
    texts, labels = toy_corpus(48, seed=0)
    params = (neural_params() if name == "lstm" else
              TfidfLogregParams(ngram_max=2, min_df=1, C=1.0, sublinear_tf=True))
    model = builder("sentiment", name)(params, vectorizer=VECTORIZER)
    model.fit(texts, labels, texts[:16], labels[:16], seed=0, work_dir=tmp_path / "w", verbose=0)
    probe = ["great film", "", "awful food, awful service", "words never seen before"]
    raw = model.predict_proba(probe)
    model.set_temperature(2.5)
    scaled = model.predict_proba(probe)
    np.testing.assert_allclose(scaled, calibration.rescale(raw, 2.5), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(scaled.argmax(axis=1), raw.argmax(axis=1))
    folder = tmp_path / "model"
    folder.mkdir()
    saved = model.save(folder)
    (folder / "meta.json").write_text('{"classes": ["negative", "positive"]}')
    np.testing.assert_allclose(sentiment_models.load(folder).predict_proba(probe), scaled,
                               rtol=1e-6, atol=1e-7)
    if name == "lstm":
        back = keras.saving.load_model(saved, safe_mode=True)
        assert back.layers[-1].name == "temperature" and back.layers[-1].temperature == 2.5


def test_an_estimator_without_logits_refuses_a_temperature(tmp_path):
    from textrnn.config import DummyParams
    from textrnn.errors import UserError

    texts, labels = toy_corpus(16, seed=0)
    model = builder("sentiment", "dummy")(DummyParams(strategy="prior"), vectorizer=VECTORIZER)
    model.fit(texts, labels, texts, labels, seed=0, work_dir=tmp_path, verbose=0)
    model.set_temperature(1.0)                      # what calibrate fits for constant output
    with pytest.raises(UserError, match="DummyClassifier has no logits to scale"):
        model.set_temperature(2.0)
