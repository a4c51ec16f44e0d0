"""The HTTP service in process: endpoints, the error contract, parity with the saved model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serving_fixtures import EchoGenerator, shared_models

from textrnn.serving import Limits, SentimentPredictor, ServingSettings, create_app, load_models
from textrnn.serving.loading import ModelInfo, find_champion

TEXTS = ["a great film, wonderful acting", "terrible plot and bad music", "zzz unknown words",
         "ok", "great " * 400]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return shared_models(tmp_path_factory)


@pytest.fixture(scope="module")
def predictor(models_dir) -> SentimentPredictor:
    sentiment, generator = load_models(models_dir)
    assert generator is None            # no charlm champion in this folder
    return sentiment


def make_client(predictor=None, generator=None, **settings) -> TestClient:
    limits = settings.pop("limits", Limits())
    app = create_app(ServingSettings(limits=limits, **settings), sentiment=predictor,
                     generator=generator)
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def client(predictor):
    with make_client(predictor, EchoGenerator()) as client:
        yield client


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"] and "Traceback" not in response.text
    return body["error"]


# ----------------------------------------------------------------------------- happy paths


def test_health_ready_and_models(client):
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready",
                                           "models": {"sentiment": True, "charlm": True}}
    models = {m["task"]: m for m in client.get("/v1/models").json()["models"]}
    assert models["sentiment"]["name"] == "tiny"
    assert models["sentiment"]["classes"] == ["negative", "positive"]
    assert models["sentiment"]["metrics"] == {"accuracy": 0.75, "f1": 0.7}
    assert models["sentiment"]["git_commit"] == "0123456789abcdef"
    assert models["sentiment"]["trained_at"] == "2025-01-02T03:04:05Z"
    assert models["sentiment"]["selected_on"] == "val_f1"
    assert models["charlm"]["name"] == "echo"


def test_sentiment_single_text(client):
    body = client.post("/v1/sentiment", json={"text": "a great film, wonderful acting"}).json()
    assert body["model"] == "tiny" and body["positive_class"] == "positive"
    [result] = body["results"]
    assert result["label"] == "positive"
    assert result["positive_probability"] == result["probabilities"]["positive"] > 0.5
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    negative = client.post("/v1/sentiment", json={"text": "terrible plot and bad music"}).json()
    assert negative["results"][0]["label"] == "negative"
    assert (negative["results"][0]["probability"]
            == negative["results"][0]["probabilities"]["negative"])


def test_batch_keeps_order_and_equals_single_requests(client):
    batch = client.post("/v1/sentiment", json={"texts": TEXTS}).json()["results"]
    singles = [client.post("/v1/sentiment", json={"text": t}).json()["results"][0] for t in TEXTS]
    assert [r["label"] for r in batch] == [r["label"] for r in singles]
    for one, many in zip(singles, batch, strict=True):
        assert one["positive_probability"] == pytest.approx(many["positive_probability"], abs=1e-6)


def test_parity_with_the_saved_model(client, models_dir):
    """The service answers what the saved model (as the evaluate stage loads it) gives."""
    import keras
    import tensorflow as tf

    model = keras.saving.load_model(models_dir / "sentiment/tiny/model/model.keras")
    expected = model.predict(tf.constant(TEXTS), verbose=0)            # (batch, 2)
    results = client.post("/v1/sentiment", json={"texts": TEXTS}).json()["results"]
    served = np.array([[r["probabilities"]["negative"], r["probabilities"]["positive"]]
                       for r in results])
    np.testing.assert_allclose(served, expected, rtol=0, atol=1e-6)


def test_no_model_predict_per_request(client, monkeypatch):
    import keras

    def forbidden(*args, **kwargs):
        raise AssertionError("model.predict called while serving")

    monkeypatch.setattr(keras.Model, "predict", forbidden)
    assert client.post("/v1/sentiment", json={"text": "great"}).status_code == 200


def test_three_classes_have_no_single_positive_probability(tmp_path_factory):
    three = load_models(shared_models(tmp_path_factory, "three"))[0]
    with make_client(three) as client:
        body = client.post("/v1/sentiment", json={"texts": ["a great film", "bad"]}).json()
    assert body["classes"] == ["anger", "joy", "neutral"] and body["positive_class"] is None
    for result in body["results"]:
        assert result["positive_probability"] is None
        assert set(result["probabilities"]) == {"anger", "joy", "neutral"}
        assert result["probability"] == max(result["probabilities"].values())


def test_predictor_without_http(predictor):
    predictions = predictor.predict(["a great film, wonderful acting", "bad film, awful acting"])
    assert [p.label for p in predictions] == ["positive", "negative"]
    assert predictor.predict_proba(TEXTS).shape == (len(TEXTS), 2)


def test_generate_passes_every_option(predictor):
    generator = EchoGenerator()
    with make_client(predictor, generator) as client:
        request = {"prompt": "En un lugar", "length": 12, "strategy": "beam", "temperature": 0.7,
                   "beam_width": 3, "seed": 7, "top_k": 4, "top_p": 0.9}
        body = client.post("/v1/generate", json=request).json()
        again = client.post("/v1/generate", json=request).json()
        default = client.post("/v1/generate", json={"prompt": "hola"}).json()
    assert len(body["text"]) == 12 and body["text"] == again["text"]
    assert body["model"] == "echo" and body["prompt"] == "En un lugar"
    assert generator.calls[0] == request
    assert {k: default[k] for k in ("strategy", "length", "beam_width", "seed", "top_k",
                                    "top_p")} == {
        "strategy": "sample", "length": 200, "beam_width": 5, "seed": None, "top_k": 0,
        "top_p": 1.0}


# ----------------------------------------------------------------------------- error contract


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_415_when_the_body_is_not_json(client, content_type):
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/v1/sentiment", content=b'{"text": "great"}', headers=headers)
    assert_error(response, 415, "unsupported_media_type")


def test_json_with_charset_is_json(client):
    response = client.post("/v1/sentiment", content=b'{"text": "great"}',
                           headers={"content-type": "application/json; charset=utf-8"})
    assert response.status_code == 200


@pytest.mark.parametrize("path, body, code", [
    ("/v1/sentiment", '{"text": "great"', "malformed_json"),
    ("/v1/sentiment", "", "invalid_request"),                       # no body at all
    ("/v1/sentiment", "[1, 2]", "invalid_request"),                 # not an object
    ("/v1/sentiment", "{}", "invalid_request"),                     # neither text nor texts
    ("/v1/sentiment", '{"text": "a", "texts": ["b"]}', "invalid_request"),
    ("/v1/sentiment", '{"text": "a", "texts": null}', "invalid_request"),   # null is no list
    ("/v1/sentiment", '{"text": "a", "lang": "en"}', "invalid_request"),   # unknown field
    ("/v1/sentiment", '{"text": 5}', "invalid_request"),            # wrong type
    ("/v1/sentiment", '{"texts": "not a list"}', "invalid_request"),
    ("/v1/sentiment", '{"text": ""}', "empty_text"),
    ("/v1/sentiment", '{"text": " \\n\\t "}', "empty_text"),
    ("/v1/sentiment", '{"texts": ["fine", ""]}', "empty_text"),
    ("/v1/sentiment", '{"text": "\\ud800"}', "invalid_request"),    # lone surrogate
    ("/v1/generate", '{"length": 5}', "invalid_request"),           # missing prompt
    ("/v1/generate", '{"prompt": "a", "strategy": "top_p"}', "invalid_request"),
    ("/v1/generate", '{"prompt": "a", "length": "5"}', "invalid_request"),
    ("/v1/generate", '{"prompt": "a", "seed": true}', "invalid_request"),
    ("/v1/generate", '{"prompt": "a", "length": 2.5}', "invalid_request"),
    ("/v1/generate", '{"prompt": ""}', "empty_prompt"),
    ("/v1/generate", '{"prompt": "a", "temperature": 0}', "out_of_range"),
    ("/v1/generate", '{"prompt": "a", "temperature": 99}', "out_of_range"),
    ("/v1/generate", '{"prompt": "a", "temperature": NaN}', "out_of_range"),
    ("/v1/generate", '{"prompt": "a", "beam_width": 0}', "out_of_range"),
    ("/v1/generate", '{"prompt": "a", "beam_width": 9}', "out_of_range"),
    ("/v1/generate", '{"prompt": "a", "length": 0}', "out_of_range"),
    ("/v1/generate", '{"prompt": "a", "length": 1001}', "out_of_range"),
    ("/v1/generate", '{"prompt": "a", "top_k": -1}', "out_of_range"),
    ("/v1/generate", '{"prompt": "a", "top_p": 0}', "out_of_range"),
    ("/v1/generate", '{"prompt": "a", "top_p": 1.5}', "out_of_range"),
])
def test_400_bad_requests(client, path, body, code):
    response = client.post(path, content=body.encode(),
                           headers={"content-type": "application/json"})
    assert_error(response, 400, code)


def test_400_names_the_field(client):
    error = assert_error(client.post("/v1/sentiment", json={"text": "a", "lang": "en"}),
                         400, "invalid_request")
    assert "lang" in error["message"]
    error = assert_error(client.post("/v1/generate", json={"length": 5}), 400, "invalid_request")
    assert "prompt" in error["message"]


def test_400_limits_come_from_the_settings(predictor):
    limits = Limits(max_texts=3, max_text_chars=10, max_prompt_chars=4, max_beam_width=2)
    with make_client(predictor, EchoGenerator(), limits=limits) as client:
        assert client.post("/v1/sentiment", json={"texts": ["a", "b", "c"]}).status_code == 200
        assert_error(client.post("/v1/sentiment", json={"texts": ["a"] * 4}), 400, "too_many_texts")
        assert client.post("/v1/sentiment", json={"text": "x" * 10}).status_code == 200
        error = assert_error(client.post("/v1/sentiment", json={"text": "x" * 11}),
                             400, "text_too_long")
        assert "10 characters" in error["message"]
        assert_error(client.post("/v1/sentiment", json={"texts": ["ok", "x" * 11]}),
                     400, "text_too_long")
        assert_error(client.post("/v1/generate", json={"prompt": "abcde"}), 400, "prompt_too_long")
        assert_error(client.post("/v1/generate", json={"prompt": "ab", "beam_width": 3}),
                     400, "out_of_range")
        schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert schema["SentimentRequest"]["properties"]["texts"]["maxItems"] == 3
    assert schema["GenerateRequest"]["properties"]["beam_width"]["maximum"] == 2


def test_413_body_over_the_cap(predictor):
    with make_client(predictor, limits=Limits(max_body_bytes=1000)) as client:
        big = json.dumps({"text": "x" * 2000}).encode()
        assert_error(client.post("/v1/sentiment", content=big,
                                 headers={"content-type": "application/json"}),
                     413, "payload_too_large")

        def chunks():                 # no Content-Length: the cap is counted while reading
            yield b'{"text": "'
            for _ in range(20):
                yield b"x" * 100
            yield b'"}'

        assert_error(client.post("/v1/sentiment", content=chunks(),
                                 headers={"content-type": "application/json"}),
                     413, "payload_too_large")
        assert client.post("/v1/sentiment", json={"text": "x" * 900}).status_code == 200


def test_404_and_405(client):
    assert_error(client.get("/v2/nothing"), 404, "not_found")
    assert_error(client.post("/v1/nothing", json={}), 404, "not_found")
    response = client.get("/v1/sentiment")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


def test_503_while_no_model_is_loaded():
    with make_client(None, None) as client:
        assert client.get("/health").status_code == 200
        assert_error(client.get("/ready"), 503, "model_not_loaded")
        assert_error(client.post("/v1/sentiment", json={"text": "great"}), 503, "model_not_loaded")
        assert_error(client.post("/v1/generate", json={"prompt": "hola"}), 503, "model_not_loaded")
        assert client.get("/v1/models").json() == {"models": []}


def test_503_generate_when_only_sentiment_is_loaded(predictor):
    with make_client(predictor) as client:
        assert client.get("/ready").json()["models"] == {"sentiment": True, "charlm": False}
        assert_error(client.post("/v1/generate", json={"prompt": "hola"}), 503, "model_not_loaded")


def test_500_only_for_a_real_fault_and_without_traceback(predictor):
    def broken(texts):
        raise RuntimeError("secret internal detail")

    faulty = SentimentPredictor(predictor.info, broken)
    with make_client(faulty) as client:
        error = assert_error(client.post("/v1/sentiment", json={"text": "great"}), 500,
                             "internal_error")
    assert "secret" not in error["message"]


def test_401_when_an_api_key_is_configured(predictor):
    with make_client(predictor, EchoGenerator(), api_key="s3cret") as client:
        assert_error(client.post("/v1/sentiment", json={"text": "great"}), 401, "unauthorized")
        assert_error(client.post("/v1/sentiment", json={"text": "great"},
                                 headers={"X-API-Key": "wrong"}), 401, "unauthorized")
        assert_error(client.get("/v1/models"), 401, "unauthorized")
        # checked before the body: no hint about the request to a caller without the key
        assert_error(client.post("/v1/sentiment", content=b"{",
                                 headers={"content-type": "text/plain"}),
                     401, "unauthorized")
        ok = client.post("/v1/sentiment", json={"text": "great"}, headers={"X-API-Key": "s3cret"})
        assert ok.status_code == 200
        assert client.get("/health").status_code == 200 and client.get("/").status_code == 200
        schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["ApiKey"]["name"] == "X-API-Key"
    assert schema["paths"]["/v1/sentiment"]["post"]["security"] == [{"ApiKey": []}]


# ----------------------------------------------------------------------------- schema and page


def test_openapi_and_docs(client):
    schema = client.get("/openapi.json").json()
    assert set(schema["paths"]) >= {"/health", "/ready", "/v1/models", "/v1/sentiment",
                                    "/v1/generate"}
    responses = schema["paths"]["/v1/sentiment"]["post"]["responses"]
    assert "422" not in responses and {"200", "400", "413", "415", "503"} <= set(responses)
    text = schema["components"]["schemas"]["SentimentRequest"]["properties"]["text"]
    assert text["maxLength"] == Limits().max_text_chars and text["minLength"] == 1
    assert "swagger-ui" in client.get("/docs").text.lower()


def test_web_page_is_served(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for element in ('id="sentiment-text"', 'id="sentiment-submit"', 'id="prompt"',
                    'id="generate-submit"', 'src="/static/app.js"'):
        assert element in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "/v1/sentiment" in client.get("/static/app.js").text


def test_champion_metadata_is_read_from_the_files(models_dir):
    info = find_champion(models_dir, "sentiment")
    assert info == ModelInfo(
        task="sentiment", name="tiny", path=models_dir / "sentiment/tiny/model", dataset="fixture",
        classes=("negative", "positive"), metrics={"accuracy": 0.75, "f1": 0.7},
        git_commit="0123456789abcdef", trained_at="2025-01-02T03:04:05Z",
        mlflow_run_id="run-fixture", selected_on="val_f1", selected_value=0.7)


# ----------------------------------------------------------------------------- micro-batching


def run_concurrently(batcher, requests):
    import asyncio

    async def main():
        return await asyncio.gather(*(batcher.submit(texts) for texts in requests),
                                    return_exceptions=True)

    return asyncio.run(main())


def test_micro_batcher_groups_concurrent_requests_and_routes_results():
    import time

    from textrnn.serving.predictor import MicroBatcher

    calls = []

    def slow(texts):                          # row i holds len(text i): results are traceable
        calls.append(len(texts))
        time.sleep(0.05)
        return np.array([[len(t), 0.0] for t in texts])

    batcher = MicroBatcher(slow, max_texts=4)
    requests = [["x" * i] for i in range(1, 11)] + [["y" * 20, "y" * 21]]
    results = run_concurrently(batcher, requests)
    batcher.close()
    assert [list(r[:, 0]) for r in results] == [[len(t) for t in texts] for texts in requests]
    assert sum(calls) == 12 and max(calls) <= 4
    assert len(calls) < len(requests)         # grouped, not one model call per request


def test_micro_batcher_hands_a_fault_to_every_waiting_request():
    from textrnn.serving.predictor import MicroBatcher

    def broken(texts):
        raise RuntimeError("boom")

    batcher = MicroBatcher(broken, max_texts=8)
    results = run_concurrently(batcher, [["a"], ["b"], ["c"]])
    batcher.close()
    assert all(isinstance(r, RuntimeError) for r in results)
