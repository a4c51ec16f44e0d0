"""The model catalog: models are named instances of a kind, resolved from per-group defaults plus
what each entry changes; a new kind is one declaration plus its builder code."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

from textrnn import catalog
from textrnn.catalog import Kind, get_kind, kinds, resolve_models
from textrnn.config import SentimentNeuralParams, read_yaml
from textrnn.errors import ParamsError
from textrnn.handoff import describe_changes, tuned_params

RAW = read_yaml(ROOT / "params.yaml")


def _resolve(task: str = "sentiment", edit=None) -> dict:
    raw = copy.deepcopy(RAW)
    if edit:
        edit(raw)
    return resolve_models(task, raw["train"][task], raw["tune"][task])


def test_every_default_model_is_its_kinds_defaults_plus_its_entry():
    specs = _resolve()
    assert list(specs) == RAW["train"]["sentiment"]["models"]
    network = RAW["train"]["sentiment"]["defaults"]["network"]
    for name in ("dnn", "simple_rnn", "lstm", "gru"):
        assert specs[name].kind.name == name
        assert specs[name].params.model_dump() == network
    assert specs["bilstm"].kind.name == "lstm"
    assert specs["bilstm"].params.model_dump() == {**network, "bidirectional": True}
    assert specs["dummy"].tune.enabled is False
    assert specs["lstm"].tune.space == specs["bilstm"].tune.space     # one group, one search
    charlm = _resolve("charlm")
    assert (charlm["simple_rnn"].params.learning_rate, charlm["simple_rnn"].params.epochs) == (
        0.002, 8)
    assert (charlm["gru"].params.learning_rate, charlm["gru"].params.epochs) == (0.004, 6)


def test_two_models_of_one_kind_differ_only_where_their_entries_say():
    def add(raw):
        train = raw["train"]["sentiment"]
        train["models"] = ["lstm", "lstm_256", "bigru"]
        train["variants"].update({"lstm_256": {"kind": "lstm", "units": 256},
                                  "bigru": {"kind": "gru", "bidirectional": True}})
        raw["tune"]["sentiment"]["models"]["lstm_256"] = {"enabled": False}

    specs = _resolve(edit=add)
    small, big = specs["lstm"].params.model_dump(), specs["lstm_256"].params.model_dump()
    assert {k for k in small if small[k] != big[k]} == {"units"} and big["units"] == 256
    assert specs["lstm_256"].tune.enabled is False and specs["lstm"].tune.enabled is True
    assert (specs["bigru"].kind.name, specs["bigru"].params.bidirectional) == ("gru", True)


def test_a_shared_default_changes_every_model_that_uses_it_and_no_other():
    """What each model's spec file holds: the stages that depend on it rerun, no others."""
    before = {n: s.to_json() for n, s in _resolve().items()}

    def dropout(raw):
        raw["train"]["sentiment"]["defaults"]["network"]["dropout"] = 0.3

    after = {n: s.to_json() for n, s in _resolve(edit=dropout).items()}
    changed = sorted(n for n in before if before[n] != after[n])
    assert changed == ["bilstm", "dnn", "gru", "lstm", "simple_rnn"]

    def one_model(raw):
        raw["train"]["sentiment"]["variants"]["gru"] = {"units": 128}

    after = {n: s.to_json() for n, s in _resolve(edit=one_model).items()}
    assert [n for n in before if before[n] != after[n]] == ["gru"]


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t["variants"].update(x={"kind": "transformer"}) or t["models"].append("x"),
     "unknown sentiment model kind 'transformer'; known kinds: dnn, dummy, gru, lm_lstm, lstm, "
     "simple_rnn, tfidf_logreg"),
    (lambda t: t["models"].append("mystery"),
     "train.sentiment.variants.mystery needs a kind (one of dnn, dummy, gru, lm_lstm, lstm, "
     "simple_rnn, tfidf_logreg)"),
    (lambda t: t["variants"].update(dnn={"bidirectional": True}),
     "train.sentiment.variants.dnn.bidirectional = True is invalid: kind dnn is not recurrent"),
    (lambda t: t["variants"].update(lstm={"units": "many"}),
     "train.sentiment.variants.lstm.units = 'many' is invalid"),
    (lambda t: t["variants"].update(lstm={"unitz": 3}),
     "train.sentiment.variants.lstm.unitz is not a known key"),
    (lambda t: t["models"].append("ensemble"), "'ensemble' is a reserved name"),
])
def test_each_mistake_in_a_model_entry_is_one_line_naming_its_key(edit, message):
    with pytest.raises(ParamsError) as info:
        _resolve(edit=lambda raw: edit(raw["train"]["sentiment"]))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_train_prints_one_line_per_tuned_value(tmp_path):
    base = _resolve()["lstm"].params
    best = tmp_path / "best_params.json"
    best.write_text(json.dumps({"tuned": True, "params": {"units": 128, "dropout": 0.5}}))
    params, tuned, changes = tuned_params(base, best)
    assert tuned and params.units == 128
    assert describe_changes(changes) == ["units: params.yaml 64 -> tuned 128"]  # dropout: same


def test_the_resolve_stage_writes_one_spec_per_model_or_one_error_line(tmp_path):
    raw = copy.deepcopy(RAW)
    raw["train"]["sentiment"]["models"] = ["tfidf_logreg", "lstm_8"]
    raw["train"]["sentiment"]["variants"] = {"lstm_8": {"kind": "lstm", "units": 8}}
    raw["train"]["sentiment"]["ensemble"] = {"members": []}
    import yaml

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    env = {"PYTHONPATH": f"{ROOT}{':'}{ROOT / 'src'}", "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "stages.resolve", "sentiment"]
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / "models/specs/sentiment"
    assert sorted(p.name for p in folder.iterdir()) == ["lstm_8", "tfidf_logreg"]
    spec = json.loads((folder / "lstm_8/model.json").read_text())
    assert (spec["kind"], spec["params"]["units"]) == ("lstm", 8)
    assert json.loads((folder / "lstm_8/tune.json").read_text())["tune"]["enabled"] is True

    raw["train"]["sentiment"]["variants"]["lstm_8"]["kind"] = "lstn"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: unknown sentiment model kind 'lstn'; known kinds: dnn, dummy, gru, lm_lstm, lstm, "
        "simple_rnn, tfidf_logreg"]
    assert sorted(p.name for p in folder.iterdir()) == ["lstm_8", "tfidf_logreg"]  # untouched


# ----------------------------------------------------------------------------- a new kind


def conv_encoder(x, params, name):
    """A throw-away 1-D CNN kind's layers: what a user adding a kind writes beside its Kind."""
    from keras import layers

    for index in range(params.layers):
        x = layers.Conv1D(params.units, 3, padding="same", activation="relu",
                          name=f"{name}_{index + 1}")(x)
    return x


@pytest.fixture
def cnn_kind():
    kind = catalog.register(Kind("sentiment", "cnn1d", SentimentNeuralParams, "network",
                                 "textrnn.sentiment.models:build_keras", neural=True,
                                 encoder="test_catalog:conv_encoder"))
    yield kind
    catalog.unregister("sentiment", "cnn1d")


def test_a_new_kind_is_one_declaration_and_schema_builder_and_tuning_take_it(cnn_kind, tmp_path):
    import optuna
    from fixtures import VECTORIZER, neural_params, toy_corpus

    from textrnn.seeding import seed_everything
    from textrnn.tuning.objectives import SentimentData, SentimentObjective

    assert "cnn1d" in kinds("sentiment") and get_kind("sentiment", "cnn1d") is cnn_kind

    def add(raw):
        raw["train"]["sentiment"]["models"] = ["cnn"]
        raw["train"]["sentiment"]["variants"] = {"cnn": {"kind": "cnn1d", "units": 16}}

    spec = _resolve(edit=add)["cnn"]                                      # the schema
    assert spec.kind is cnn_kind and spec.params.units == 16 and spec.tune.enabled

    seed_everything(0)
    texts, labels = toy_corpus(32, seed=0)
    model = spec.kind.build(neural_params(units=8), vectorizer=VECTORIZER)  # the builder
    model.fit(texts, labels, texts[:16], labels[:16], seed=0, work_dir=tmp_path, verbose=0)
    assert model.predict_proba(["great film", ""]).shape == (2, 2)
    assert any(layer.name == "cnn1d_1" for layer in model.model.get_layer("cnn1d_network").layers)

    objective = SentimentObjective(                                        # the tuning
        model="cnn", kind=spec.kind, base=neural_params(units=8, epochs=2, patience=2),
        vectorizer=VECTORIZER, data=SentimentData(texts, labels, texts[:16], labels[:16]),
        seed=0, fixed={})
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    score = objective(trial, {"units": 4})
    assert 0.0 <= score <= 1.0 and np.isfinite(score)


def test_a_model_changed_behind_dvcs_back_is_refused(tmp_path, monkeypatch):
    """Ensemble and evaluate read a model through its record, which pins the folder's digest."""
    from textrnn.errors import DataError
    from textrnn.handoff import trained_model_dir, write_trained_record

    monkeypatch.chdir(tmp_path)
    folder = Path("models/sentiment/lstm/model")
    folder.mkdir(parents=True)
    (folder / "model.keras").write_bytes(b"weights")
    with pytest.raises(DataError, match=r"metrics/trained/sentiment/lstm.json is missing: run "
                                        r"`dvc repro train_sentiment@lstm` first"):
        trained_model_dir("sentiment", "lstm")
    write_trained_record("sentiment", "lstm", kind="lstm", model_dir=folder, val={"accuracy": 0.5})
    assert trained_model_dir("sentiment", "lstm") == folder
    (folder / "model.keras").write_bytes(b"other weights")
    with pytest.raises(DataError, match=r"models/sentiment/lstm/model changed since "
                                        r"train_sentiment@lstm wrote "
                                        r"metrics/trained/sentiment/lstm.json"):
        trained_model_dir("sentiment", "lstm")


# ----------------------------------------------------------------------------- dataset profiles


def _run_resolve(tmp_path: Path, raw: dict) -> subprocess.CompletedProcess:
    import yaml

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    env = {"PYTHONPATH": f"{ROOT}{':'}{ROOT / 'src'}", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "stages.resolve", "sentiment"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)


def test_choosing_imdb_chooses_its_profile_and_every_other_key_still_applies(tmp_path):
    from textrnn.config import apply_profiles, profile_changes

    raw = copy.deepcopy(RAW)
    profile = raw["profiles"]["sentiment"]["imdb"]
    uci = _resolve()
    assert uci["lstm"].params.epochs == RAW["train"]["sentiment"]["defaults"]["network"]["epochs"]

    raw["data"]["sentiment"] = "imdb"
    raw["train"]["sentiment"]["defaults"]["network"]["units"] = 96    # a user's -S, not profiled
    seen = apply_profiles(raw)
    imdb = resolve_models("sentiment", seen["train"]["sentiment"], seen["tune"]["sentiment"])
    for key, value in profile["train"]["defaults"]["network"].items():
        assert getattr(imdb["lstm"].params, key) == value, key
    assert imdb["lstm"].params.units == 96
    assert imdb["lstm"].tune.n_trials == profile["tune"]["defaults"]["network"]["n_trials"]
    # a variant's own entry still wins over the profile's defaults (the preset runs as published)
    assert imdb["bilstm"].params.bidirectional is True
    student = catalog.resolve_model("sentiment", "student_lstm", seen["train"]["sentiment"])
    assert (student.params.epochs, student.params.batch_size) == (10, 64)
    assert seen["embeddings"]["unlabelled"] is True and RAW["embeddings"]["unlabelled"] is False
    assert raw["train"]["sentiment"]["defaults"]["network"]["epochs"] == 20   # file unchanged
    # the language model's budget and size follow the dataset too, key by key
    raw["profiles"]["sentiment"]["imdb"]["pretrain"] = {"train_tokens": 1234}
    assert apply_profiles(raw)["pretrain"] == {**RAW["pretrain"], "train_tokens": 1234}
    assert ("pretrain.train_tokens", 1234) in profile_changes(raw, "sentiment")
    raw["profiles"]["sentiment"]["imdb"]["pretrain"] = profile.get("pretrain", {})

    proc = _run_resolve(tmp_path, raw)
    assert proc.returncode == 0, proc.stderr
    assert "profile imdb (profiles.sentiment.imdb) sets " in proc.stdout
    assert "train.sentiment.defaults.network.epochs=5" in proc.stdout
    spec = json.loads((tmp_path / "models/specs/sentiment/lstm/model.json").read_text())
    assert (spec["params"]["epochs"], spec["params"]["units"]) == (5, 96)


def test_a_profile_value_is_changed_in_the_profile_and_a_bad_one_is_one_line(tmp_path):
    from textrnn.config import load_params

    raw = copy.deepcopy(RAW)
    raw["data"]["sentiment"] = "imdb"
    raw["profiles"]["sentiment"]["imdb"]["train"]["defaults"]["network"]["epochs"] = 7
    proc = _run_resolve(tmp_path, raw)
    assert proc.returncode == 0, proc.stderr
    spec = json.loads((tmp_path / "models/specs/sentiment/gru/model.json").read_text())
    assert spec["params"]["epochs"] == 7

    raw["profiles"]["sentiment"]["imdb"]["train"]["defaults"]["network"]["epochs"] = 0
    proc = _run_resolve(tmp_path, raw)
    assert proc.returncode == 2
    assert "train.sentiment.defaults.network.epochs = 0 is invalid" in proc.stderr
    assert json.loads((tmp_path / "models/specs/sentiment/gru/model.json").read_text())[
        "params"]["epochs"] == 7                                       # untouched

    raw["profiles"]["sentiment"]["imbd"] = {"train": {}}
    proc = _run_resolve(tmp_path, raw)
    assert proc.returncode == 2 and "profiles.sentiment.imbd" in proc.stderr
    raw["profiles"]["sentiment"].pop("imbd")
    raw["profiles"]["sentiment"]["imdb"]["train"]["default"] = {}
    proc = _run_resolve(tmp_path, raw)
    assert proc.returncode == 2
    assert "profiles.sentiment.imdb.train.default is not a known key" in proc.stderr
    raw["profiles"]["sentiment"]["imdb"]["train"].pop("default")
    import yaml

    for section, values in (("embeddings", {"dim": 50}), ("pretrain", {"units": 64})):
        raw["profiles"]["charlm"] = {"quijote": {section: values}}
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
        with pytest.raises(ParamsError, match=f"charlm.quijote.{section}: .* belong to the "
                                              "sentiment task"):
            load_params("embeddings", path=tmp_path / "params.yaml")
