"""End to end: `dvc repro evaluate_sentiment` in a throw-away copy of the repository, tiny
params."""

from __future__ import annotations

import csv
import json
import re

import keras
import numpy as np
import pytest
import yaml
from conftest import copy_repo, run_cmd

from textrnn.sentiment.calibration import rescale

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

NETWORKS = ["dnn", "simple_rnn", "lstm", "gru", "bilstm"]      # the ensemble's members
MODELS = ["dummy", "tfidf_logreg", *NETWORKS, "lm_lstm"]        # params.yaml's, and lm_lstm
EVALUATED = [*MODELS, "ensemble"]   # the ensemble of the five neural models is scored too
TINY = {"embedding_dim": 8, "units": 8, "dense_units": 8, "epochs": 2, "patience": 1,
        "batch_size": 64}
# the language model lm_lstm starts from: the real corpus (100k IMDb reviews), a tiny network
TINY_LM = {"embedding_dim": 8, "units": 8, "vocabulary": 2000, "sampled": 64,
           "sequence_length": 20, "batch_size": 16, "train_tokens": 3200, "val_reviews": 20,
           "eval_every": 5}


@pytest.fixture(scope="module")
def repo(tmp_path_factory, mirror):
    dest = copy_repo(tmp_path_factory.mktemp("sentiment") / "repo", params_override={
        "train": {"sentiment": {"models": MODELS, "defaults": {
            "network": TINY,                                          # every neural model
            "transfer": {"dense_units": 8, "epochs": 2, "patience": 1, "lm_epochs": 1}}}},
        "pretrain": {**TINY_LM, "corpus": "imdb"},
        "evaluate": {"sentiment": {"bootstrap_samples": 200}},
        "tune": {"sentiment": {"defaults": {"tfidf_logreg": {"enabled": False},
                                            "network": {"enabled": False},
                                            "transfer": {"enabled": False}}}},
        "embeddings": {"vocabulary": 3000, "dim": 8},   # = TINY embedding_dim: pretrained start
    })
    env = {"TEXTRNN_DATA_MIRROR": str(mirror)}
    run_cmd(["dvc", "repro", "evaluate_sentiment"], dest, env=env, timeout=1500)
    return dest, env


def test_every_model_is_evaluated_on_test_and_champion_chosen_on_val(repo):
    dest, _ = repo
    metrics = json.loads((dest / "metrics/sentiment.json").read_text())
    assert list(metrics) == sorted(EVALUATED)
    for name, entry in metrics.items():
        for key in ("accuracy", "precision", "recall", "f1", "kappa", "roc_auc", "log_loss"):
            assert 0 <= entry[key] <= (1 if key != "log_loss" else 50), (name, key)
        low, high = entry["ci"]["accuracy"]
        assert low <= entry["accuracy"] <= high
        assert set(entry["accuracy_by_origin"]) == {"amazon", "imdb", "yelp"}
    assert metrics["dummy"]["accuracy"] == pytest.approx(0.5, abs=0.02)
    assert metrics["tfidf_logreg"]["accuracy"] > 0.7
    champion = json.loads((dest / "models/sentiment/champion.json").read_text())
    assert champion["selected_on"] == "val_accuracy"
    val = {n: metrics[n]["val"]["accuracy"] for n in EVALUATED}
    assert champion["value"] == max(val.values()) and val[champion["model"]] == champion["value"]
    assert "mcnemar_vs_champion" not in metrics[champion["model"]]
    others = [n for n in EVALUATED if n != champion["model"]]
    assert all(0 <= metrics[n]["mcnemar_vs_champion"]["p_value"] <= 1 for n in others)


def test_each_training_run_records_the_kernel_its_recurrent_layers_ran(repo):
    """On this CPU: Keras' loop (params.yaml's implementation: keras); a GPU would say cudnn."""
    import mlflow

    dest, _ = repo
    client = mlflow.MlflowClient(f"sqlite:///{dest / 'mlflow.db'}")
    expected = {"tfidf_logreg": "none", "dnn": "none", "lstm": "keras loop (lstm_1)",
                "gru": "keras loop (gru_1)",
                "bilstm": "keras loop (bilstm_1/forward, bilstm_1/backward)",
                "lm_lstm": "keras loop (lm_lstm_1)"}
    for name, kernels in expected.items():
        meta = json.loads((dest / f"models/sentiment/{name}/model/meta.json").read_text())
        assert client.get_run(meta["mlflow_run_id"]).data.tags["recurrent_kernels"] == kernels


def test_saved_models_take_raw_strings_and_reproduce_evaluation(repo):
    dest, _ = repo
    import pandas as pd

    from textrnn.sentiment import models as sentiment_models

    test = pd.read_parquet(dest / "data/split/sentiment/test.parquet")
    metrics = json.loads((dest / "metrics/sentiment.json").read_text())
    for name in ("tfidf_logreg", "lstm"):
        model_dir = dest / f"models/sentiment/{name}/model"
        meta = json.loads((model_dir / "meta.json").read_text())
        assert meta["classes"] == ["negative", "positive"] and meta["mlflow_run_id"]
        proba = sentiment_models.load(model_dir).predict_proba(list(test.text))
        accuracy = float((np.array(meta["classes"])[proba.argmax(1)] == test.label).mean())
        assert accuracy == pytest.approx(metrics[name]["accuracy"])
    raw = keras.saving.load_model(dest / "models/sentiment/lstm/model/model.keras", safe_mode=True)
    assert tuple(raw(np.asarray(["great phone", "awful"], dtype=object)).shape) == (2, 2)


def test_the_service_answers_what_evaluate_measured(repo):
    """Parity: the HTTP service's predictor, loaded from models/, reproduces the champion's test
    accuracy in metrics/sentiment.json and the saved model's probabilities."""
    dest, _ = repo
    import pandas as pd

    from textrnn.sentiment import models as sentiment_models
    from textrnn.serving import SentimentPredictor, find_champion

    test = pd.read_parquet(dest / "data/split/sentiment/test.parquet")
    metrics = json.loads((dest / "metrics/sentiment.json").read_text())
    champion = json.loads((dest / "models/sentiment/champion.json").read_text())["model"]
    # The service's own loader (the copy's charlm champion has no model: not trained here).
    predictor = SentimentPredictor.load(find_champion(dest / "models", "sentiment"))
    assert predictor.info.name == champion
    served = predictor.predict_proba(list(test.text))
    saved = sentiment_models.load(
        dest / f"models/sentiment/{champion}/model").predict_proba(list(test.text))
    np.testing.assert_allclose(served, saved, rtol=1e-5, atol=1e-6)
    accuracy = float((np.array(predictor.classes)[served.argmax(1)] == test.label).mean())
    assert accuracy == pytest.approx(metrics[champion]["accuracy"])


def test_the_ensemble_averages_its_members_on_raw_strings(repo):
    dest, _ = repo
    from textrnn.sentiment import models as sentiment_models

    texts = ["great phone, works well", "awful, broke after a day", "the food was ok"]
    meta = json.loads((dest / "models/sentiment/ensemble/model/meta.json").read_text())
    assert meta["members"] == NETWORKS and meta["mlflow_run_id"]
    members = [sentiment_models.load(dest / f"models/sentiment/{name}/model").predict_proba(texts)
               for name in meta["members"]]
    ensemble = sentiment_models.load(dest / "models/sentiment/ensemble/model").predict_proba(texts)
    # the mean of the members, then the ensemble's own temperature (fitted on val)
    mean = rescale(np.mean(members, axis=0), meta["calibration"]["temperature"])
    np.testing.assert_allclose(ensemble, mean, rtol=1e-5, atol=1e-6)
    # saved without optimizer state: a file loads with Keras alone, in safe mode
    raw = keras.saving.load_model(dest / "models/sentiment/ensemble/model/model.keras",
                                  safe_mode=True)
    assert tuple(raw(np.asarray(texts, dtype=object)).shape) == (3, 2)


def test_every_model_is_calibrated_on_val_without_changing_a_prediction(repo):
    """Each saved model ends in its temperature: the test probabilities it gives, rescaled back
    by 1 / T, pick the same class for every row, so test accuracy is the same either way."""
    dest, _ = repo
    import pandas as pd

    from textrnn.sentiment import models as sentiment_models

    test = pd.read_parquet(dest / "data/split/sentiment/test.parquet")
    metrics = json.loads((dest / "metrics/sentiment.json").read_text())
    for name in EVALUATED:
        model_dir = dest / f"models/sentiment/{name}/model"
        fitted = json.loads((model_dir / "meta.json").read_text())["calibration"]
        entry = metrics[name]["calibration"]
        assert entry["temperature"] == fitted["temperature"] > 0
        assert fitted["val_nll_after"] <= fitted["val_nll_before"]       # fitted on val
        calibrated = sentiment_models.load(model_dir).predict_proba(list(test.text))
        uncalibrated = rescale(calibrated, 1.0 / fitted["temperature"])
        np.testing.assert_array_equal(calibrated.argmax(1), uncalibrated.argmax(1))
        for key in ("ece_before", "ece_after", "brier_before", "brier_after"):
            assert 0 <= entry[key] <= 1, (name, key)
    rows = list(csv.DictReader((dest / "plots/sentiment/reliability.csv").open()))
    assert {(r["model"], r["probabilities"]) for r in rows} == {
        (n, k) for n in EVALUATED for k in ("uncalibrated", "calibrated")}
    report = (dest / "reports/sentiment.md").read_text()
    assert "## Calibration" in report
    # the champion's confident mistakes come with word attributions (a neural champion), or the
    # report says why not; completeness is checked on 100 test sentences
    assert "## Why the champion errs: word attributions" in report
    champion = json.loads((dest / "models/sentiment/champion.json").read_text())["model"]
    checked = metrics[champion].get("attributions")
    if champion in ("dummy", "tfidf_logreg"):
        assert checked is None and "No attributions: the champion is a scikit-learn" in report
    else:
        assert checked["sentences"] == 100 and 0 <= checked["within_tolerance"] <= 1
        assert "), predicted " in report


def test_report_plots_and_history_are_written(repo):
    dest, _ = repo
    report = (dest / "reports/sentiment.md").read_text()
    for name in EVALUATED:
        assert f"| {name} |" in report
    assert "Training diagnostics" in report and "Champion" in report
    assert ("`ensemble` is the mean of the probabilities of dnn, simple_rnn, lstm, gru, bilstm"
            in report)
    for image in re.findall(r"!\[[^]]*\]\(([^)]+)\)", report):
        assert (dest / "reports" / image).resolve().is_file(), image
    history = (dest / "plots/sentiment/history/lstm.csv").read_text().splitlines()
    assert history[0] == "epoch,loss,accuracy,val_loss,val_accuracy,lr,epoch_seconds"
    assert 2 <= len(history) <= 3
    run_cmd(["dvc", "plots", "show", "-o", "dvc_plots"], dest)
    page = (dest / "dvc_plots/index.html").read_text()
    assert "reliability on test, without and with the fitted temperature" in page
    shown = run_cmd(["dvc", "metrics", "show", "--json"], dest).stdout
    assert "bilstm" in shown and "roc_auc" in shown


def _stale_after(dest, env, edit) -> set[str]:
    """The stages `dvc status` calls stale once ``edit`` of params.yaml is resolved."""
    original = (dest / "params.yaml").read_text()
    params = yaml.safe_load(original)
    edit(params["train"]["sentiment"])
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        run_cmd(["dvc", "repro", "-s", "resolve@sentiment"], dest, env=env)
        status = json.loads(run_cmd(["dvc", "status", "--json", "evaluate_sentiment",
                                     "--with-deps"], dest, env=env).stdout)
    finally:
        (dest / "params.yaml").write_text(original)
        run_cmd(["dvc", "repro", "-s", "resolve@sentiment"], dest, env=env)
    return {stage.split(":")[-1] for stage in status}


def test_changing_one_models_params_retrains_only_that_model(repo):
    dest, env = repo
    # evaluate_sentiment and the ensemble turn stale only once the new gru model exists
    assert _stale_after(dest, env, lambda train: train["variants"].update(gru={"units": 12})) \
        == {"tune_sentiment@gru", "train_sentiment@gru"}


def test_a_shared_default_reruns_every_model_that_uses_it_and_no_other(repo):
    dest, env = repo
    stale = _stale_after(dest, env, lambda train: train["defaults"]["network"].update(units=6))
    assert stale == {f"{stage}@{name}" for stage in ("tune_sentiment", "train_sentiment")
                     for name in NETWORKS}     # not dummy, tfidf_logreg, lm_lstm (transfer)


def test_retraining_with_the_same_seed_gives_the_same_metrics(repo):
    dest, env = repo
    before = json.loads((dest / "models/sentiment/lstm/model/meta.json").read_text())
    run_cmd(["dvc", "repro", "-f", "-s", "train_sentiment@lstm"], dest, env=env, timeout=600)
    after = json.loads((dest / "models/sentiment/lstm/model/meta.json").read_text())
    assert after["val_metrics"] == before["val_metrics"]
    assert after["mlflow_run_id"] != before["mlflow_run_id"]


def _without_run_ids(metrics: dict) -> dict:
    return {model: {k: v for k, v in row.items() if k != "mlflow_run_id"}
            for model, row in metrics.items()}


def test_repro_force_gives_bit_identical_metrics(repo):
    """Determinism: every stage rerun from scratch gives the same metrics file, byte for byte
    (but for the MLflow run ids, which are new runs by design)."""
    dest, env = repo
    before = json.loads((dest / "metrics/sentiment.json").read_text())
    run_cmd(["dvc", "repro", "--force", "evaluate_sentiment"], dest, env=env, timeout=1500)
    after = json.loads((dest / "metrics/sentiment.json").read_text())
    assert json.dumps(_without_run_ids(after), sort_keys=True) == \
        json.dumps(_without_run_ids(before), sort_keys=True)
    assert all(after[m]["mlflow_run_id"] != before[m]["mlflow_run_id"] for m in EVALUATED)


def test_models_are_added_and_dropped_with_dvc_exp_run_alone(repo):
    """A second LSTM of another size and a bidirectional GRU, the rest dropped: `-S` only, no
    edit of dvc.yaml or params.yaml by hand (last in this module: it changes the workspace)."""
    dest, env = repo
    names = ["tfidf_logreg", "lstm", "lstm_16", "bigru"]
    run_cmd(["dvc", "exp", "run", "evaluate_sentiment",
             "-S", f"train.sentiment.models=[{','.join(names)}]",
             "-S", "+train.sentiment.variants.lstm_16={kind: lstm, units: 16}",
             "-S", "+train.sentiment.variants.bigru={kind: gru, bidirectional: true}",
             "-S", "train.sentiment.ensemble.members=[lstm,bigru]"], dest, env=env, timeout=1500)
    metrics = json.loads((dest / "metrics/sentiment.json").read_text())
    assert sorted(metrics) == sorted([*names, "ensemble"])
    meta = {name: json.loads((dest / f"models/sentiment/{name}/model/meta.json").read_text())
            for name in ("lstm_16", "bigru")}
    assert meta["lstm_16"]["kind"] == "lstm" and meta["bigru"]["kind"] == "gru"
    bigru = keras.saving.load_model(dest / "models/sentiment/bigru/model/model.keras",
                                    safe_mode=True)
    network = bigru.get_layer("bigru_network")
    assert isinstance(network.get_layer("bigru_1"), keras.layers.Bidirectional)
    spec = json.loads((dest / "models/specs/sentiment/lstm_16/model.json").read_text())
    assert (spec["params"]["units"] == 16
            and spec["params"]["embedding_dim"] == TINY["embedding_dim"])
    shown = json.loads(run_cmd(["dvc", "exp", "show", "--json"], dest, env=env).stdout)
    assert "lstm_16" in json.dumps(shown)
