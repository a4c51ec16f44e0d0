"""Your own data end to end: a three-class table through the whole sentiment pipeline (and the
service), a text file through the whole charlm pipeline, on tiny params."""

from __future__ import annotations

import json

import pytest
from conftest import copy_repo, run_cmd

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

CLASSES = ["negative", "neutral", "positive"]
SENTIMENT_MODELS = ["dummy", "tfidf_logreg", "gru"]
TINY_SENTIMENT = {"embedding_dim": 8, "units": 8, "dense_units": 8, "epochs": 2, "patience": 1,
                  "batch_size": 16, "embedding_init": "random"}
TINY_CHARLM = {"embedding_dim": 4, "units": 8, "layers": 1, "batch_size": 8, "epochs": 1,
               "patience": 1, "steps_per_epoch": 4, "learning_rate": 0.02}


def test_a_three_class_table_runs_through_the_pipeline_and_the_service(tmp_path):
    repo = copy_repo(tmp_path / "repo", {
        "data": {"sentiment": "custom", "custom": {"sentiment": {
            "path": "examples/reviews.tsv", "text_column": "review", "label_column": "sentiment"}}},
        "train": {"sentiment": {"models": SENTIMENT_MODELS, "variants": {"gru": TINY_SENTIMENT},
                                "ensemble": {"members": []}}},
        "tune": {"sentiment": {"models": {m: {"enabled": False} for m in
                                          ["dummy", "tfidf_logreg", "dnn", "simple_rnn", "lstm",
                                           "gru", "bilstm"]}}},
        "evaluate": {"sentiment": {"bootstrap_samples": 100}},
        "embeddings": {"corpus": "none"},   # the embed stage then writes no vectors, in no time
        "pretrain": {"corpus": "none"},     # and pretrain_lm no language model
    })
    run_cmd(["dvc", "repro", "evaluate_sentiment"], repo, timeout=1500)

    metrics = json.loads((repo / "metrics/sentiment.json").read_text())
    assert sorted(metrics) == sorted(SENTIMENT_MODELS)
    for row in metrics.values():
        assert 0 <= row["f1"] <= 1 and -1 <= row["kappa"] <= 1 and 0 <= row["roc_auc"] <= 1
    meta = json.loads((repo / "models/sentiment/gru/model/meta.json").read_text())
    assert meta["classes"] == CLASSES

    from fastapi.testclient import TestClient

    from textrnn.serving import SentimentPredictor, ServingSettings, create_app, find_champion

    # The service's own loader (the copy's charlm champion has no model: not trained here).
    predictor = SentimentPredictor.load(find_champion(repo / "models", "sentiment"))
    client = TestClient(create_app(ServingSettings(models_dir=repo / "models"),
                                   sentiment=predictor))
    answer = client.post("/v1/sentiment", json={"texts": ["I loved the screen.", "It is okay."]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["positive_class"] == "positive"  # named so in the data, so it is reported
    for result in body["results"]:
        assert sorted(result["probabilities"]) == CLASSES
        assert result["positive_probability"] == result["probabilities"]["positive"]
        assert sum(result["probabilities"].values()) == pytest.approx(1, abs=1e-5)
        assert result["label"] in CLASSES


def test_a_text_file_runs_through_the_charlm_pipeline(tmp_path):
    repo = copy_repo(tmp_path / "repo", {
        "data": {"charlm": "custom", "custom": {"charlm": {"path": "corpus.txt"}}},
        "preprocess": {"charlm": {"min_chars": 1000}},
        "train": {"charlm": {"models": ["gru"], "sequence_length": 16,
                             "variants": {"gru": TINY_CHARLM}}},
        "tune": {"charlm": {"models": {m: {"enabled": False}
                                       for m in ["simple_rnn", "lstm", "gru"]}}},
        "evaluate": {"charlm": {"prompts": ["el "], "sample_length": 10, "temperatures": [1.0],
                                "beam_width": 2}},
    })
    (repo / "corpus.txt").write_text(
        "El caballero andante sale al camino y encuentra molinos.\n" * 60, encoding="utf-8")
    run_cmd(["git", "add", "corpus.txt"], repo)
    run_cmd(["dvc", "repro", "evaluate_charlm"], repo, timeout=1500)
    metrics = json.loads((repo / "metrics/charlm.json").read_text())
    assert list(metrics) == ["gru"]
    vocab = json.loads((repo / "models/charlm/gru/model/vocab.json").read_text())
    assert 1 < metrics["gru"]["test_perplexity"] < len(vocab)
    assert "el " in (repo / "reports/charlm_samples.md").read_text(encoding="utf-8")
