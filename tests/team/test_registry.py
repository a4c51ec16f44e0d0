"""The MLflow Model Registry: models logged as pyfuncs with a signature and an input example,
registered as textrnn-<task>, the champion alias set by evaluate, and the service's predictors
loaded from the registry with the same answers as from models/."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import serving_fixtures as fixtures

from textrnn import registry, tracking
from textrnn.errors import UserError

TEXTS = ["a great film, wonderful acting", "terrible plot and bad music", "ok"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A fresh SQLite tracking store holding three registered models (two sentiment, one charlm),
    each logged by its own run; the models/ folder they came from."""
    import mlflow

    before = mlflow.get_tracking_uri()
    base = tmp_path_factory.mktemp("registry")
    models = base / "models"
    skops_dir = fixtures.write_skops_sentiment(models, "tfidf_logreg")
    keras_dir = fixtures.write_keras_sentiment(models, "lstm")
    charlm_dir = fixtures.write_charlm(models, "gru")
    uri = f"sqlite:///{base / 'mlflow.db'}"
    tracking.configure(uri, "test-registry")
    runs = {}
    for stage, model_dir in (("train_sentiment@tfidf_logreg", skops_dir),
                             ("train_sentiment@lstm", keras_dir),
                             ("train_charlm@gru", charlm_dir)):
        with tracking.start_run(run_name=stage, stage=stage) as run:
            runs[stage.split("@")[1]] = run.info.run_id, registry.log_model(model_dir)
    yield uri, models, runs
    mlflow.set_tracking_uri(before)


def test_each_model_is_a_registered_version_linked_to_its_run(store):
    import mlflow

    uri, _, runs = store
    client = mlflow.MlflowClient()
    for model, (run_id, version) in runs.items():
        task = "charlm" if model == "gru" else "sentiment"
        assert version.name == f"textrnn-{task}" and version.run_id == run_id
        assert client.get_model_version(version.name, version.version).tags["model"] == model
    versions = client.search_model_versions("name='textrnn-sentiment'")
    assert sorted(v.tags["model"] for v in versions) == ["lstm", "tfidf_logreg"]


def test_sentiment_pyfunc_has_signature_and_example_and_matches_the_saved_model(store):
    import mlflow

    from textrnn.sentiment import models as sentiment_models

    _, models, runs = store
    for name in ("tfidf_logreg", "lstm"):
        version = runs[name][1]
        pyfunc = mlflow.pyfunc.load_model(f"models:/textrnn-sentiment/{version.version}")
        signature = pyfunc.metadata.signature
        assert signature.inputs.input_names() == ["text"]
        assert signature.outputs.input_names() == ["negative", "positive"]
        example = pyfunc.input_example                   # saved with the model
        assert list(example.columns) == ["text"] and len(example) >= 1
        got = pyfunc.predict(pd.DataFrame({"text": TEXTS}))
        want = sentiment_models.load(models / "sentiment" / name / "model").predict_proba(TEXTS)
        assert list(got.columns) == ["negative", "positive"]
        np.testing.assert_allclose(got.to_numpy(), want, rtol=1e-6)
        with pytest.raises(Exception, match="text"):     # the signature rejects a wrong column
            pyfunc.predict(pd.DataFrame({"review": TEXTS}))


def test_registered_models_require_tensorflow_not_its_cpu_only_build(store):
    """A GPU machine serving a registered model gets a TensorFlow that can use its GPU."""
    import mlflow

    _, _, runs = store
    for name in ("tfidf_logreg", "lstm"):
        folder = mlflow.artifacts.download_artifacts(
            f"models:/textrnn-sentiment/{runs[name][1].version}")
        with open(f"{folder}/requirements.txt") as handle:
            requirements = handle.read().split()
        assert any(line.startswith("tensorflow==") for line in requirements), requirements
        assert not any(line.startswith("tensorflow-cpu") for line in requirements), requirements


def test_charlm_pyfunc_generates_text_with_signature_params(store):
    import mlflow

    from textrnn.charlm import decoding

    _, models, runs = store
    version = runs["gru"][1]
    pyfunc = mlflow.pyfunc.load_model(f"models:/textrnn-charlm/{version.version}")
    assert pyfunc.metadata.signature.inputs.input_names() == ["prompt"]
    assert {p.name for p in pyfunc.metadata.signature.params} >= {"length", "strategy", "seed"}
    got = pyfunc.predict(pd.DataFrame({"prompt": ["En un lugar"]}),
                         params={"length": 12, "strategy": "greedy"})
    want = decoding.generator_from_folder(models / "charlm" / "gru" / "model").generate(
        "En un lugar", length=12, strategy="greedy")
    assert got["text"].tolist() == [want] and len(want) == 12


def test_champion_alias_follows_the_run_that_evaluate_chose(store):
    import mlflow

    _, _, runs = store
    client = mlflow.MlflowClient()
    for name in ("lstm", "tfidf_logreg"):
        run_id, version = runs[name]
        chosen = registry.set_champion("sentiment", run_id, selected_on="val_accuracy", value=0.9)
        assert chosen.version == version.version
        by_alias = client.get_model_version_by_alias("textrnn-sentiment", "champion")
        assert by_alias.version == version.version and by_alias.tags["model"] == name
        assert by_alias.tags["selected_on"] == "val_accuracy"
    # a run that registered nothing (another store, an old model) leaves the alias where it was
    assert registry.set_champion("sentiment", "no-such-run") is None
    assert client.get_model_version_by_alias("textrnn-sentiment", "champion").tags["model"] == \
        "tfidf_logreg"


def test_service_loads_the_champions_from_the_registry_like_from_models(store, tmp_path):
    import mlflow

    from textrnn.serving import load_models
    from textrnn.serving.from_registry import load_models as load_registered

    uri, models, runs = store
    registry.set_champion("sentiment", runs["lstm"][0], selected_on="val_accuracy", value=0.9)
    registry.set_champion("charlm", runs["gru"][0], selected_on="val_perplexity", value=9.5)
    fixtures.write_champion(models, "sentiment", "lstm")
    fixtures.write_champion(models, "charlm", "gru")

    mlflow.set_tracking_uri(f"file://{tmp_path / 'elsewhere'}")   # the service's own default
    try:
        sentiment, generator = load_registered(uri)              # reads only ``uri``
    finally:
        mlflow.set_tracking_uri(uri)
    assert not (tmp_path / "elsewhere").exists()
    local_sentiment, local_generator = load_models(models)
    assert sentiment.info.name == "lstm" and sentiment.info.selected_on == "val_accuracy"
    assert sentiment.info.selected_value == pytest.approx(0.9)
    assert sentiment.info.mlflow_run_id == local_sentiment.info.mlflow_run_id
    assert [p.label for p in sentiment.predict(TEXTS)] == \
        [p.label for p in local_sentiment.predict(TEXTS)]
    np.testing.assert_allclose(sentiment.predict_proba(TEXTS),
                               local_sentiment.predict_proba(TEXTS), rtol=1e-6)
    options = dict(length=20, strategy="beam", temperature=1.0, beam_width=2, seed=0, top_k=0)
    assert generator.info.name == "gru"
    assert generator.generate("En un", **options) == local_generator.generate("En un", **options)


def test_a_registry_without_a_champion_is_a_clear_error(tmp_path):
    import mlflow

    from textrnn.serving.from_registry import load_models as load_registered

    before = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path / 'empty.db'}"
    try:
        with pytest.raises(UserError, match="has no textrnn-sentiment@champion.*dvc repro"):
            load_registered(uri)
    finally:
        mlflow.set_tracking_uri(before)


def test_log_model_rejects_a_folder_without_meta_and_a_call_outside_a_run(store, tmp_path):
    _, models, _ = store
    with pytest.raises(UserError, match="meta.json"):
        registry.log_model(tmp_path)
    copy = shutil.copytree(models / "sentiment" / "tfidf_logreg" / "model", tmp_path / "m")
    meta = json.loads((copy / "meta.json").read_text())
    assert meta["task"] == "sentiment"
    with pytest.raises(UserError, match="active MLflow run"):
        registry.log_model(copy)


def test_charlm_input_example_uses_characters_the_model_knows(tmp_path):
    (tmp_path / "vocab.json").write_text(json.dumps(["\x00", "x", "y", " "]))
    assert registry._charlm_example(tmp_path) == ["xy "]      # the default prompt has none of them
    known = sorted(set(registry.CHARLM_EXAMPLE[0]))
    (tmp_path / "vocab.json").write_text(json.dumps(["\x00", *known]))
    assert registry._charlm_example(tmp_path) == registry.CHARLM_EXAMPLE
