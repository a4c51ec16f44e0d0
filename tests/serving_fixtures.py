"""Tiny saved models laid out exactly as docs/CONTRACTS.md says, for the serving tests.

models/sentiment/<name>/model/{model.keras | model.skops, meta.json} and
models/sentiment/champion.json, built in a temporary folder in about a second.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

TRAIN_TEXTS = [
    "a great film, wonderful acting", "good fun and great music", "i loved it, excellent",
    "wonderful and moving, good", "bad film, awful acting", "terrible plot and bad music",
    "i hated it, awful", "boring and bad, terrible",
]
TRAIN_LABELS = [1, 1, 1, 1, 0, 0, 0, 0]


def write_meta(model_dir: Path, *, task: str, name: str, classes: list[str]) -> None:
    meta = {
        "task": task, "model": name, "classes": classes, "dataset": "fixture",
        "trained_at": "2025-01-02T03:04:05Z", "git_commit": "0123456789abcdef",
        "mlflow_run_id": "run-fixture", "val_metrics": {"accuracy": 0.75, "f1": 0.7},
    }
    (model_dir / "meta.json").write_text(json.dumps(meta), encoding="utf-8")


def write_champion(models_dir: Path, task: str, name: str) -> None:
    (models_dir / task).mkdir(parents=True, exist_ok=True)
    (models_dir / task / "champion.json").write_text(
        json.dumps({"model": name, "selected_on": "val_f1", "value": 0.7}), encoding="utf-8")


def build_keras_sentiment(classes: list[str], *, seed: int = 0):
    """TextVectorization + Embedding + GlobalAveragePooling + Dense softmax: raw strings in,
    (batch, n_classes) probabilities out; fitted a few epochs so words move the output."""
    import keras
    import numpy as np
    import tensorflow as tf
    from keras import layers

    keras.utils.set_random_seed(seed)
    vectorizer = layers.TextVectorization(max_tokens=200, output_sequence_length=16)
    vectorizer.adapt(tf.constant(TRAIN_TEXTS))
    texts = keras.Input(shape=(), dtype="string")              # (batch,)
    x = vectorizer(texts)                                      # (batch, 16) token ids
    x = layers.Embedding(200, 8)(x)                            # (batch, 16, 8)
    x = layers.GlobalAveragePooling1D()(x)                     # (batch, 8)
    probabilities = layers.Dense(len(classes), activation="softmax")(x)
    model = keras.Model(texts, probabilities)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    labels = np.array([label % len(classes) for label in TRAIN_LABELS])
    model.fit(tf.constant(TRAIN_TEXTS), labels, epochs=30, verbose=0)
    return model


def write_keras_sentiment(models_dir: Path, name: str = "tiny",
                          classes: tuple[str, ...] = ("negative", "positive"),
                          champion: bool = True) -> Path:
    model_dir = models_dir / "sentiment" / name / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    build_keras_sentiment(list(classes)).save(model_dir / "model.keras")
    write_meta(model_dir, task="sentiment", name=name, classes=list(classes))
    if champion:
        write_champion(models_dir, "sentiment", name)
    return model_dir


def write_neural_sentiment(models_dir: Path, name: str = "lstm", temperature: float = 1.5) -> Path:
    """A model of the pipeline's own kind ``name`` (catalog builder, vectorizer inside, a
    Temperature layer at the end, as the train stage saves it), fitted on TRAIN_TEXTS until the
    sentiment words decide the label; made the sentiment champion. The one fixture model that
    ``explain`` works on."""
    import keras

    from textrnn.catalog import get_kind
    from textrnn.config import SentimentNeuralParams, VectorizerParams
    from textrnn.layers import Temperature
    from textrnn.seeding import seed_everything

    seed_everything(0)
    params = SentimentNeuralParams(
        optimizer="adam", learning_rate=0.02, clipnorm=1.0, batch_size=8, epochs=30, patience=30,
        embedding_dim=8, embedding_init="random", pretrained_norm=10.0,
        vocabulary_from_vectors=False, units=8, layers=1, bidirectional=False, dropout=0.1,
        recurrent_dropout=0.0, l2=1e-3, dense_units=0, activation="relu", pooling="max_mean",
        steps_per_execution=1)
    model = get_kind("sentiment", name).build(
        params, vectorizer=VectorizerParams(max_tokens=200, max_length=16))
    labels = ["positive" if y else "negative" for y in TRAIN_LABELS]
    with tempfile.TemporaryDirectory() as work:
        model.fit(TRAIN_TEXTS, labels, TRAIN_TEXTS, labels, seed=0, work_dir=Path(work),
                  verbose=0)
    end_to_end = model.model
    scaled = Temperature(temperature, name="temperature")(end_to_end.outputs[0])
    model_dir = models_dir / "sentiment" / name / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    keras.Model(end_to_end.inputs[0], scaled, name=end_to_end.name).save(model_dir / "model.keras")
    write_meta(model_dir, task="sentiment", name=name, classes=model.classes)
    write_champion(models_dir, "sentiment", name)
    return model_dir


def write_skops_sentiment(models_dir: Path, name: str = "tfidf_logreg") -> Path:
    import skops.io as sio
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model_dir = models_dir / "sentiment" / name / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    labels = ["positive" if y else "negative" for y in TRAIN_LABELS]
    pipeline = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(TRAIN_TEXTS, labels)
    sio.dump(pipeline, model_dir / "model.skops")
    write_meta(model_dir, task="sentiment", name=name, classes=["negative", "positive"])
    write_champion(models_dir, "sentiment", name)
    return model_dir


CHARLM_TEXT = "En un lugar de la Mancha, de cuyo nombre no quiero acordarme. "


def write_charlm(models_dir: Path, name: str = "gru") -> Path:
    """An untrained one-layer GRU over the characters of CHARLM_TEXT, saved by
    textrnn.charlm.train itself (model.keras, vocab.json, meta.json), and made the charlm
    champion."""
    import keras

    from textrnn.catalog import get_kind
    from textrnn.charlm import train as charlm_train
    from textrnn.config import CharlmNeuralParams

    keras.utils.set_random_seed(0)
    vocab = charlm_train.build_vocab(CHARLM_TEXT)
    # Only the architecture matters here; the fitting fields of the schema are not read.
    params = CharlmNeuralParams.model_construct(embedding_dim=8, units=16, layers=1, dropout=0.0)
    model = get_kind("charlm", name).build(params, vocab_size=len(vocab))
    model_dir = models_dir / "charlm" / name / "model"
    meta = {"task": "charlm", "model": name, "dataset": "fixture",
            "trained_at": "2025-01-02T03:04:05Z", "git_commit": "0123456789abcdef",
            "mlflow_run_id": "run-charlm", "val_metrics": {"perplexity": 9.5}}
    charlm_train.save(model_dir, model, vocab, meta)
    write_champion(models_dir, "charlm", name)
    return model_dir


def copy_models(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest)
    return dest


# ----------------------------------------------------------------------------- a real server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """`python -m textrnn serve` on a free loopback port, as a user starts it."""

    def __init__(self, models_dir: Path, *extra: str, env: dict | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [sys.executable, "-m", "textrnn", "serve", "--port", str(self.port),
                     "--models-dir", str(models_dir), *extra]
        self.env = env
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> ServerProcess:
        import os

        # A file, not a pipe: nobody reads a pipe while the server runs, and a full one blocks it.
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT,
                                     text=True, env={**os.environ, **(self.env or {})})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.__exit__(None, None, None)
        raise RuntimeError("server did not become ready within 120 s")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ----------------------------------------------------------------------------- shared in a run

_BUILT: dict[str, Path] = {}


def shared_models(tmp_path_factory, kind: str = "keras") -> Path:
    """A models/ folder built once per test process (tests that change it take a copy)."""
    if kind not in _BUILT:
        root = tmp_path_factory.mktemp(f"models-{kind}")
        {"keras": write_keras_sentiment, "skops": write_skops_sentiment,
         "three": lambda d: write_keras_sentiment(d, name="three",
                                                  classes=("anger", "joy", "neutral")),
         "both": lambda d: (write_keras_sentiment(d), write_charlm(d))}[kind](root)
        _BUILT[kind] = root
    return _BUILT[kind]


def shared_neural_models(tmp_path_factory) -> Path:
    """Like :func:`shared_models`: a models/ folder whose sentiment champion is
    :func:`write_neural_sentiment`'s, built once per test process."""
    if "neural" not in _BUILT:
        root = tmp_path_factory.mktemp("models-neural")
        write_neural_sentiment(root)
        _BUILT["neural"] = root
    return _BUILT["neural"]


class EchoGenerator:
    """Stands in for the charlm decoders in tests of the HTTP layer: a deterministic function of
    prompt, strategy and seed, that records its calls."""

    def __init__(self) -> None:
        from textrnn.serving.loading import ModelInfo

        self.info = ModelInfo(task="charlm", name="echo", path=Path("echo"), dataset="fixture")
        self.calls: list[dict] = []

    def generate(self, prompt: str, *, length: int, strategy: str, temperature: float,
                 beam_width: int, seed: int | None, top_k: int, top_p: float = 1.0) -> str:
        import random

        self.calls.append({"prompt": prompt, "length": length, "strategy": strategy,
                           "temperature": temperature, "beam_width": beam_width, "seed": seed,
                           "top_k": top_k, "top_p": top_p})
        rng = random.Random(f"{prompt}|{strategy}|{seed}")
        return "".join(rng.choice("abc de") for _ in range(length))
