"""`explain: true` on POST /v1/sentiment: word attributions that add up, their limits, the error
for a model that cannot be explained, and what the OpenAPI schema says about them."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serving_fixtures import shared_models, shared_neural_models

from textrnn.sentiment.explain import COMPLETENESS_TOLERANCE, DEFAULT_STEPS, MIN_STEPS
from textrnn.sentiment.text import tokens
from textrnn.serving import Limits, ServingSettings, create_app, load_models

TEXTS = ["A great film, wonderful acting!", "Terrible plot and bad music.", "zzz unknown words"]


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    return load_models(shared_neural_models(tmp_path_factory))[0]


def make_client(predictor, limits: Limits | None = None) -> TestClient:
    app = create_app(ServingSettings(limits=limits or Limits()), sentiment=predictor)
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def client(predictor):
    with make_client(predictor) as client:
        yield client


def assert_error(response, code: str) -> str:
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code, response.json()
    return response.json()["error"]["message"]


def test_each_result_carries_attributions_that_add_up(client):
    plain = client.post("/v1/sentiment", json={"texts": TEXTS}).json()["results"]
    explained = client.post("/v1/sentiment", json={"texts": TEXTS, "explain": True}).json()
    for text, before, result in zip(TEXTS, plain, explained["results"], strict=True):
        assert "attributions" not in before and "log_odds" not in before
        # the same prediction as without explain, plus the attributions
        assert {k: result[k] for k in before} == before
        assert [a["token"] for a in result["attributions"]] == tokens(text)
        p = result["probability"]
        assert result["log_odds"] == pytest.approx(np.log(p / (1 - p)), abs=1e-3)
        total = sum(a["score"] for a in result["attributions"])
        gap = total - (result["log_odds"] - result["baseline_log_odds"])
        assert abs(gap) <= COMPLETENESS_TOLERANCE, result


def test_the_sentiment_word_weighs_most(client):
    # "film" is in positive and negative training sentences alike; the other word decides
    results = client.post("/v1/sentiment", json={"texts": ["Great film!", "bad film"],
                                                 "explain": True}).json()["results"]
    for result, label, word in zip(results, ["positive", "negative"], ["great", "bad"],
                                   strict=True):
        assert result["label"] == label
        top = max(result["attributions"], key=lambda a: a["score"])
        assert top["token"] == word and top["score"] > 0, result


def test_a_text_alone_and_in_a_batch_get_the_same_attributions(client):
    alone = client.post("/v1/sentiment", json={"text": TEXTS[1], "explain": True}).json()
    batch = client.post("/v1/sentiment", json={"texts": TEXTS, "explain": True}).json()
    assert alone["results"][0] == batch["results"][1]


def test_a_text_with_no_word_reads_as_one_unknown_word(client):
    [result] = client.post("/v1/sentiment", json={"text": "?!", "explain": True}).json()["results"]
    [unknown] = client.post("/v1/sentiment",
                            json={"text": "zzqxw", "explain": True}).json()["results"]
    assert [a["token"] for a in result["attributions"]] == ["[UNK]"]
    assert result["log_odds"] == pytest.approx(unknown["log_odds"], abs=1e-5)
    assert result["label"] == unknown["label"]


def test_explanations_run_on_a_worker_thread(predictor):
    seen = []
    explain = predictor.explain

    def recording(*args, **kwargs):
        try:
            asyncio.get_running_loop()
            seen.append("event loop")
        except RuntimeError:
            seen.append(threading.current_thread().name)
        return explain(*args, **kwargs)

    with make_client(predictor) as client:
        predictor.explain = recording
        try:
            assert client.post("/v1/sentiment", json={"text": "great", "explain": True}).is_success
        finally:
            del predictor.explain
    assert seen and seen[0] not in ("event loop", "sentiment-batcher")


def test_the_attributions_are_for_the_label_the_response_gives(predictor):
    """Explanations run beside the probabilities and explain the class they predict; should a
    near tie round the other way there, the text is explained again for the response's label."""
    explain, calls = predictor.explain, []

    def tie_rounded_the_other_way(texts, *, steps, labels=None):
        calls.append(labels)
        flipped = ["negative" if e.label == "positive" else "positive"
                   for e in explain(texts, steps=steps)]
        return explain(texts, steps=steps, labels=labels or flipped)

    with make_client(predictor) as client:
        predictor.explain = tie_rounded_the_other_way
        try:
            [result] = client.post("/v1/sentiment", json={"text": "Great film!",
                                                          "explain": True}).json()["results"]
        finally:
            del predictor.explain
    assert calls == [None, ["positive"]] and result["label"] == "positive"
    assert result["log_odds"] > 0
    assert max(result["attributions"], key=lambda a: a["score"])["token"] == "great"


def test_limits_on_texts_and_steps_are_400(predictor):
    limits = Limits(max_explain_texts=2, max_explain_steps=16)
    with make_client(predictor, limits) as client:
        def post(**body):
            return client.post("/v1/sentiment", json=body)

        assert post(texts=TEXTS[:2], explain=True).status_code == 200
        message = assert_error(post(texts=TEXTS, explain=True), "too_many_texts")
        assert "limit is 2 texts" in message
        assert post(texts=TEXTS).status_code == 200           # the explain limit only
        assert post(text="great", explain=True, explain_steps=16).status_code == 200
        assert post(text="great", explain=True, explain_steps=16.0).status_code == 200
        for steps in (MIN_STEPS - 1, 17):
            assert_error(post(text="great", explain=True, explain_steps=steps), "out_of_range")
        assert_error(post(text="great", explain="yes"), "invalid_request")
        schema = client.get("/openapi.json").json()["components"]["schemas"]
    request = schema["SentimentRequest"]["properties"]
    assert request["explain_steps"]["maximum"] == 16 and request["explain_steps"]["default"] == 16
    assert "at most 2 texts" in request["explain"]["description"]


@pytest.mark.parametrize("kind, reason", [
    ("skops", "explanations need a neural (Keras) model; the loaded sentiment model "
              "'tfidf_logreg' is not one (scikit-learn models are not explained)"),
    ("keras", "the loaded sentiment model 'tiny' cannot be explained: "),
])
def test_a_model_that_cannot_be_explained_says_so(tmp_path_factory, kind, reason):
    other = load_models(shared_models(tmp_path_factory, kind))[0]
    with make_client(other) as client:
        assert client.post("/v1/sentiment", json={"text": "great"}).status_code == 200
        message = assert_error(client.post("/v1/sentiment", json={"text": "great",
                                                                  "explain": True}),
                               "not_explainable")
        schema = client.get("/openapi.json").json()["components"]["schemas"]
        [described] = client.get("/v1/models").json()["models"]
    assert message.startswith(f"explain: {reason}"), message
    assert schema["SentimentRequest"]["properties"]["explain"]["enum"] == [False]
    assert described["explainable"] is False


def test_openapi_shows_the_fields_and_limits(client):
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    request = schema["SentimentRequest"]["properties"]
    assert request["explain"]["type"] == "boolean" and request["explain"]["default"] is False
    assert "enum" not in request["explain"]
    assert request["explain_steps"] == {
        **request["explain_steps"], "type": "integer", "minimum": MIN_STEPS,
        "maximum": Limits().max_explain_steps, "default": DEFAULT_STEPS}
    assert f"at most {Limits().max_explain_texts} texts" in request["explain"]["description"]
    result = schema["SentimentResult"]["properties"]
    assert {"attributions", "log_odds", "baseline_log_odds"} <= set(result)
    assert set(schema["Attribution"]["properties"]) == {"token", "score"}
    [described] = client.get("/v1/models").json()["models"]
    assert described["explainable"] is True
