"""Start-up: models load once, and a missing or unreadable one is a clear one-line error.

The process tests run `python -m textrnn serve` as a user does and talk to it over HTTP.
"""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest
from serving_fixtures import ServerProcess, copy_models, shared_models, write_champion, write_meta

from textrnn.errors import UserError
from textrnn.serving import ServingSettings, load_models


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return shared_models(tmp_path_factory)


def serve(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "textrnn", "serve", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# ----------------------------------------------------------------------------- the real process


def test_real_server_over_http(models_dir):
    with ServerProcess(models_dir, "--no-access-log") as server, httpx.Client(
            base_url=server.url, timeout=30) as http:
        assert http.get("/health").json() == {"status": "ok"}
        assert http.get("/ready").json()["models"] == {"sentiment": True, "charlm": False}
        body = http.post("/v1/sentiment", json={"texts": ["a great film", "awful, bad"]}).json()
        assert [r["label"] for r in body["results"]] == ["positive", "negative"]
        response = http.post("/v1/sentiment", content=b"great",
                             headers={"content-type": "text/plain"})
        assert (response.status_code == 415
                and response.json()["error"]["code"] == "unsupported_media_type")
        response = http.post("/v1/sentiment", content=b"{",
                             headers={"content-type": "application/json"})
        assert response.status_code == 400 and response.json()["error"]["code"] == "malformed_json"
        assert http.get("/nowhere").json()["error"]["code"] == "not_found"
        assert http.post("/v1/generate", json={"prompt": "hola"}).status_code == 503
        assert "sentiment-text" in http.get("/").text
    assert server.proc.returncode is not None


def test_real_server_with_api_key(models_dir):
    with ServerProcess(models_dir, env={"TEXTRNN_API_KEY": "k3y"}) as server:
        assert httpx.post(f"{server.url}/v1/sentiment", json={"text": "good"}).status_code == 401
        ok = httpx.post(f"{server.url}/v1/sentiment", json={"text": "good"},
                        headers={"X-API-Key": "k3y"})
        assert ok.status_code == 200


def test_missing_model_is_a_start_up_error(tmp_path):
    assert_one_line_error(serve("--models-dir", str(tmp_path), "--port", "1"),
                          "champion.json", "no champion sentiment model")


def test_corrupt_model_file_is_a_start_up_error(models_dir, tmp_path):
    broken = copy_models(models_dir, tmp_path / "models")
    (broken / "sentiment/tiny/model/model.keras").write_bytes(b"not a zip file")
    assert_one_line_error(serve("--models-dir", str(broken), "--port", "1"),
                          "model.keras", "cannot load the model")


def test_non_loopback_needs_a_key_or_allow_remote(tmp_path):
    assert_one_line_error(serve("--host", "0.0.0.0", "--models-dir", str(tmp_path)),
                          "refusing to listen on 0.0.0.0", "--allow-remote")


def test_console_script_and_module_share_the_parser():
    import shutil

    script = shutil.which("textrnn") or str(
        __import__("pathlib").Path(sys.executable).with_name("textrnn"))
    proc = subprocess.run([script, "serve", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for flag in ("--host", "--port", "--models-dir", "--allow-remote", "--max-texts"):
        assert flag in proc.stdout


# ----------------------------------------------------------------------------- loading, in process


def test_exposure_rules():
    ServingSettings(host="127.0.0.1").check_exposure()
    ServingSettings(host="::1").check_exposure()
    ServingSettings(host="localhost").check_exposure()
    ServingSettings(host="0.0.0.0", api_key="k").check_exposure()
    ServingSettings(host="0.0.0.0", allow_remote=True).check_exposure()
    for host in ("0.0.0.0", "192.168.1.5", "example.org", "::"):
        with pytest.raises(UserError, match="refusing to listen"):
            ServingSettings(host=host).check_exposure()


def test_champion_naming_a_missing_model(models_dir, tmp_path):
    broken = copy_models(models_dir, tmp_path / "models")
    write_champion(broken, "sentiment", "lstm")
    with pytest.raises(UserError, match=r"sentiment/lstm/model/meta\.json: file not found"):
        load_models(broken)


def test_malformed_champion_and_meta(models_dir, tmp_path):
    broken = copy_models(models_dir, tmp_path / "models")
    (broken / "sentiment/champion.json").write_text("{not json")
    with pytest.raises(UserError, match=r"champion\.json: unreadable"):
        load_models(broken)
    (broken / "sentiment/champion.json").write_text(json.dumps({"value": 1}))
    with pytest.raises(UserError, match=r"champion\.json: expected"):
        load_models(broken)
    write_champion(broken, "sentiment", "tiny")
    write_meta(broken / "sentiment/tiny/model", task="sentiment", name="tiny", classes=["only"])
    with pytest.raises(UserError, match="at least two distinct class names"):
        load_models(broken)


def test_classes_that_do_not_match_the_output(models_dir, tmp_path):
    broken = copy_models(models_dir, tmp_path / "models")
    write_meta(broken / "sentiment/tiny/model", task="sentiment", name="tiny",
               classes=["negative", "neutral", "positive"])
    with pytest.raises(UserError, match=r"outputs shape \(1, 2\).*expected \(1, 3\)"):
        load_models(broken)


def test_no_model_file(models_dir, tmp_path):
    broken = copy_models(models_dir, tmp_path / "models")
    (broken / "sentiment/tiny/model/model.keras").unlink()
    with pytest.raises(UserError, match="neither model.keras nor model.skops"):
        load_models(broken)


def test_keras_files_load_in_safe_mode(tmp_path):
    """A model with a Lambda layer (arbitrary code on load) is refused, not executed."""
    import keras
    from keras import layers

    models_dir = tmp_path / "models"
    model_dir = models_dir / "sentiment/unsafe/model"
    model_dir.mkdir(parents=True)
    texts = keras.Input(shape=(), dtype="string")
    x = layers.TextVectorization(max_tokens=20, output_sequence_length=4,
                                 vocabulary=["a", "b"])(texts)
    x = layers.Lambda(lambda t: keras.ops.cast(t, "float32"))(x)
    model = keras.Model(texts, layers.Dense(2, activation="softmax")(x))
    model.save(model_dir / "model.keras")
    write_meta(model_dir, task="sentiment", name="unsafe", classes=["negative", "positive"])
    write_champion(models_dir, "sentiment", "unsafe")
    with pytest.raises(UserError, match="cannot load the model.*(safe_mode|Lambda|lambda)"):
        load_models(models_dir)


def test_scikit_learn_champion(tmp_path_factory):
    sentiment, _ = load_models(shared_models(tmp_path_factory, "skops"))
    assert sentiment.info.name == "tfidf_logreg"
    predictions = sentiment.predict(["a great film, wonderful acting", "bad film, awful acting"])
    assert [p.label for p in predictions] == ["positive", "negative"]
