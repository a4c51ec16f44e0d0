"""End to end: `dvc repro evaluate_charlm` in a throw-away copy of the repository, tiny params."""

from __future__ import annotations

import csv
import json
import math

import keras
import numpy as np
import pytest
from conftest import copy_repo, run_cmd

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

MODELS = ["simple_rnn", "lstm", "gru"]
TINY = {"embedding_dim": 4, "units": 8, "layers": 1, "batch_size": 16, "epochs": 2,
        "patience": 2, "steps_per_epoch": 6, "learning_rate": 0.02}
TEMPERATURES = [0.5, 1.2]
PROMPT = "En un lugar de la Mancha"


@pytest.fixture(scope="module")
def repo(tmp_path_factory, mirror):
    dest = copy_repo(tmp_path_factory.mktemp("charlm") / "repo", params_override={
        "train": {"charlm": {"models": MODELS, "sequence_length": 20,
                             "variants": {name: TINY for name in MODELS}}},
        "tune": {"charlm": {"models": {name: {"enabled": False} for name in MODELS}}},
        "evaluate": {"charlm": {"prompts": [PROMPT], "sample_length": 30,
                                "temperatures": TEMPERATURES, "beam_width": 3}},
    })
    env = {"TEXTRNN_DATA_MIRROR": str(mirror)}
    run_cmd(["dvc", "repro", "evaluate_charlm"], dest, env=env, timeout=1500)
    return dest, env


def test_every_model_gets_exact_test_perplexity_and_the_champion_is_chosen_on_val(repo):
    dest, _ = repo
    metrics = json.loads((dest / "metrics/charlm.json").read_text())
    assert sorted(metrics) == sorted(MODELS)
    vocab = json.loads((dest / "models/charlm/gru/model/vocab.json").read_text())
    test_chars = len((dest / "data/split/charlm/test.txt").read_text(encoding="utf-8"))
    for name, entry in metrics.items():
        # trained a few steps: better than a uniform guess, far from a good model
        assert 1 < entry["test_perplexity"] < len(vocab), name
        assert entry["test_bits_per_char"] == pytest.approx(math.log2(entry["test_perplexity"]))
        assert entry["test_characters"] == test_chars - 1      # every character but the first
        assert entry["epochs"] == 2 and entry["seconds_per_epoch"] > 0
    champion = json.loads((dest / "models/charlm/champion.json").read_text())
    val = {name: metrics[name]["val_perplexity"] for name in MODELS}
    assert champion["selected_on"] == "val_perplexity"
    assert champion["value"] == min(val.values()) == val[champion["model"]]


def test_vocabulary_comes_from_the_training_split_only(repo):
    dest, _ = repo
    split = {name: (dest / f"data/split/charlm/{name}.txt").read_text(encoding="utf-8")
             for name in ("train", "val", "test")}
    for name in MODELS:
        vocab = json.loads((dest / f"models/charlm/{name}/model/vocab.json").read_text())
        assert vocab[0] == "" and vocab[1:] == sorted(set(split["train"]))


def test_saved_model_maps_ids_to_logits_and_records_its_run(repo):
    dest, _ = repo
    model_dir = dest / "models/charlm/lstm/model"
    model = keras.saving.load_model(model_dir / "model.keras", safe_mode=True)
    vocab = json.loads((model_dir / "vocab.json").read_text())
    assert tuple(model(np.ones((2, 7), "int32")).shape) == (2, 7, len(vocab))
    meta = json.loads((model_dir / "meta.json").read_text())
    assert meta["task"] == "charlm" and meta["model"] == "lstm" and meta["mlflow_run_id"]

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{dest / 'mlflow.db'}")
    run = client.get_run(meta["mlflow_run_id"])
    metrics = json.loads((dest / "metrics/charlm.json").read_text())["lstm"]
    assert run.data.metrics["test/perplexity"] == pytest.approx(metrics["test_perplexity"])
    assert len(client.get_metric_history(run.info.run_id, "val_perplexity")) == 2   # per epoch
    assert run.data.params["params.units"] == "8"


def test_samples_cover_every_model_strategy_and_temperature(repo):
    dest, _ = repo
    report = (dest / "reports/charlm_samples.md").read_text(encoding="utf-8")
    sections = report.split("\n## ")[1:]
    assert sorted(section.split("\n")[0].split(" ")[0] for section in sections) == sorted(MODELS)
    for section in sections:
        assert "**greedy**" in section and "**beam, width 3**" in section
        for temperature in TEMPERATURES:
            assert f"**sample, temperature {temperature:g}**" in section
            assert f"**stochastic_beam, width 3, temperature {temperature:g}**" in section
        assert section.count("````text\n" + PROMPT) == 2 + 2 * len(TEMPERATURES)


def test_training_curves_have_one_row_per_epoch(repo):
    dest, _ = repo
    for name in MODELS:
        with open(dest / f"plots/charlm/history/{name}.csv", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert [row["epoch"] for row in rows] == ["1", "2"]
        assert all(float(row["val_perplexity"]) > 1 for row in rows)


def test_a_second_repro_has_nothing_to_do(repo):
    dest, env = repo
    out = run_cmd(["dvc", "status", "evaluate_charlm"], dest, env=env).stdout
    assert "up to date" in out.lower(), out


def test_repro_force_gives_bit_identical_metrics(repo):
    """Determinism: a forced rerun of every stage gives the same perplexities, byte for byte
    (timings and MLflow run ids aside)."""
    dest, env = repo
    varying = {"mlflow_run_id", "seconds_per_epoch", "train_seconds"}

    def stable(text: str) -> str:
        rows = json.loads(text)
        return json.dumps({m: {k: v for k, v in r.items() if k not in varying}
                           for m, r in rows.items()}, sort_keys=True)

    before = (dest / "metrics/charlm.json").read_text()
    run_cmd(["dvc", "repro", "--force", "evaluate_charlm"], dest, env=env, timeout=1500)
    after = (dest / "metrics/charlm.json").read_text()
    assert stable(after) == stable(before)
    assert "perplexity" in stable(after)
