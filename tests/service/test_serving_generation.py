"""POST /v1/generate over a real (tiny, untrained) charlm model and textrnn.charlm.decoding."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from serving_fixtures import CHARLM_TEXT, copy_models, shared_models

from textrnn.errors import UserError
from textrnn.serving import Limits, ServingSettings, create_app, load_models
from textrnn.serving.generator import CharlmGenerator


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return shared_models(tmp_path_factory, "both")


@pytest.fixture(scope="module")
def loaded(models_dir):
    return load_models(models_dir)


@pytest.fixture(scope="module")
def client(loaded):
    sentiment, generator = loaded
    app = create_app(ServingSettings(limits=Limits(max_beam_width=200)), sentiment=sentiment,
                     generator=generator)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def generate(client, **request) -> dict:
    response = client.post("/v1/generate", json={"prompt": "En un lugar", **request})
    assert response.status_code == 200, response.text
    return response.json()


def test_charlm_champion_is_loaded(loaded, client):
    assert isinstance(loaded[1], CharlmGenerator)
    assert client.get("/ready").json()["models"] == {"sentiment": True, "charlm": True}
    models = {m["task"]: m for m in client.get("/v1/models").json()["models"]}
    assert models["charlm"]["name"] == "gru" and models["charlm"]["metrics"] == {"perplexity": 9.5}


def test_every_strategy_answers_the_length_asked_in_known_characters(client):
    for strategy in ("greedy", "beam", "stochastic_beam", "sample"):
        body = generate(client, strategy=strategy, length=25, seed=3)
        assert body["strategy"] == strategy and body["model"] == "gru"
        assert len(body["text"]) == 25
        assert set(body["text"]) <= set(CHARLM_TEXT)


def test_seeds_make_sampling_reproducible(client):
    first = generate(client, strategy="sample", length=40, seed=11, temperature=1.5)["text"]
    assert generate(client, strategy="sample", length=40, seed=11, temperature=1.5)["text"] == first
    others = {generate(client, strategy="sample", length=40, seed=s, temperature=1.5)["text"]
              for s in range(12, 16)}
    assert others - {first}                    # another seed, another text


def test_beam_width_one_is_greedy(client):
    greedy = generate(client, strategy="greedy", length=30)["text"]
    assert generate(client, strategy="beam", beam_width=1, length=30)["text"] == greedy


def test_prompt_of_unknown_characters_is_400(client):
    response = client.post("/v1/generate", json={"prompt": "ЖЖЖ字"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_characters"
    # a prompt with some known characters is continued
    assert generate(client, prompt="Жa", length=5)["text"]


def test_beam_wider_than_the_vocabulary_is_400(client):
    response = client.post("/v1/generate", json={"prompt": "En", "strategy": "beam",
                                                 "beam_width": 150})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "out_of_range"


def test_unreadable_charlm_model_is_a_start_up_error(models_dir, tmp_path):
    broken = copy_models(models_dir, tmp_path / "models")
    (broken / "charlm/gru/model/model.keras").write_bytes(b"garbage")
    with pytest.raises(UserError, match=r"charlm/gru/model.*cannot load the charlm model"):
        load_models(broken)


def test_top_p_narrows_sampling_and_one_is_off(client):
    greedy = generate(client, strategy="greedy", length=30)["text"]
    body = generate(client, strategy="sample", length=30, seed=5, top_p=1e-6)
    assert body["top_p"] == 1e-6 and body["text"] == greedy          # a tiny nucleus: greedy
    plain = generate(client, strategy="sample", length=30, seed=5, temperature=1.5)
    assert plain["top_p"] == 1.0                                      # the default: off
    assert generate(client, strategy="sample", length=30, seed=5, temperature=1.5,
                    top_p=1)["text"] == plain["text"]
    nucleus = generate(client, strategy="sample", length=30, seed=5, temperature=1.5, top_k=5,
                       top_p=0.9)
    assert len(nucleus["text"]) == 30 and nucleus["top_k"] == 5


@pytest.mark.parametrize("top_p", [0, 1.5, -0.5, "0.9", None])
def test_top_p_outside_zero_to_one_is_400(client, top_p):
    response = client.post("/v1/generate", json={"prompt": "En", "strategy": "sample",
                                                 "top_p": top_p})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == ("out_of_range" if isinstance(top_p, int | float) else
                             "invalid_request")
    assert "top_p" in error["message"]
