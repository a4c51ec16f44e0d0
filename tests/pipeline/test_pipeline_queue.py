"""Experiments queued and run in parallel keep their records.

`dvc exp run --queue` twice, then `dvc queue start -j 2`: DVC runs each experiment in its own copy
under .dvc/tmp/exps/. Their MLflow runs, registered models and tuning studies must land in the
project's stores (not in the copies, which DVC deletes), `dvc exp show` must list both, and
`dvc exp apply` of one must give a workspace the service starts from. The tiny pipeline
(tiny_pipeline.py: dummy and tfidf_logreg) with two tuning trials of tfidf_logreg.
"""

from __future__ import annotations

import json
import re
import time

import pytest
import yaml
from conftest import run_cmd
from tiny_pipeline import TARGET, commit, make_repo

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

EXPERIMENTS = {"c-low": "0.5", "c-high": "20.0"}


@pytest.fixture(scope="module")
def queued(tmp_path_factory, mirror):
    repo = make_repo(tmp_path_factory.mktemp("queue") / "repo", "sqlite:///mlflow.db")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["tune"]["sentiment"]["models"]["tfidf_logreg"] = {"enabled": True, "n_trials": 2}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    commit(repo, "tune tfidf_logreg briefly")
    env = {"TEXTRNN_DATA_MIRROR": str(mirror)}
    for name, c in EXPERIMENTS.items():
        run_cmd(["dvc", "exp", "run", "--queue", "-n", name,
                 "-S", f"train.sentiment.defaults.tfidf_logreg.C={c}", TARGET], repo, env=env)
    run_cmd(["dvc", "queue", "start", "-j", "2"], repo, env=env)
    deadline = time.monotonic() + 1500
    while time.monotonic() < deadline:
        status = run_cmd(["dvc", "queue", "status"], repo, env=env).stdout
        if not any(word in status for word in ("Queued", "Running")):
            break
        time.sleep(5)
    else:
        pytest.fail(f"the queue did not finish in time:\n{status}")
    run_cmd(["dvc", "queue", "stop"], repo, env=env, check=False)
    logs = {name: run_cmd(["dvc", "queue", "logs", name], repo, env=env, check=False).stdout
            for name in EXPERIMENTS}
    assert status.count("Success") == len(EXPERIMENTS), f"{status}\n{logs}"
    return repo, env


def test_both_experiments_are_listed_with_their_metrics(queued):
    repo, env = queued
    shown = json.loads(run_cmd(["dvc", "exp", "show", "--json"], repo, env=env).stdout)
    found = {}
    for baseline in shown:
        for experiment in baseline.get("experiments") or []:
            for rev in experiment.get("revs") or []:
                data = rev.get("data") or {}
                metrics = (data.get("metrics") or {}).get("metrics/sentiment.json", {})
                if rev.get("name") in EXPERIMENTS:
                    found[rev["name"]] = metrics.get("data", {}).get("tfidf_logreg", {})
    assert set(found) == set(EXPERIMENTS)
    assert all(0.6 < entry["accuracy"] <= 1 for entry in found.values()), found


def test_their_mlflow_runs_models_and_studies_are_in_the_projects_stores(queued):
    repo, _ = queued
    import mlflow
    import optuna

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("textrnn")
    runs = client.search_runs([experiment.experiment_id], max_results=500)
    by_experiment: dict[str, set[str]] = {}
    for run in runs:
        name = run.data.tags.get("dvc_experiment")
        if name:
            by_experiment.setdefault(name, set()).add(run.data.tags.get("dvc_stage", ""))
            assert run.info.run_name.endswith(f" · {name}") or run.data.tags.get("optuna_trial")
    assert set(by_experiment) == set(EXPERIMENTS)
    for stages in by_experiment.values():
        assert {"train_sentiment@dummy", "train_sentiment@tfidf_logreg",
                "tune_sentiment@tfidf_logreg"} <= stages
    versions = client.search_model_versions("name='textrnn-sentiment'")
    sources = {client.get_run(v.run_id).data.tags.get("dvc_experiment") for v in versions}
    assert set(EXPERIMENTS) <= sources                  # each experiment registered its models
    for version in versions:                            # ... with artifacts that outlive the copy
        assert ".dvc/tmp/exps" not in (version.source or "")
    storage = f"sqlite:///{repo / '.tune' / 'studies.db'}"
    studies = [s for s in optuna.get_all_study_summaries(storage) if "tfidf_logreg" in
               s.study_name]
    assert len(studies) >= len(EXPERIMENTS)             # one per C, not lost with the copies
    assert all(s.n_trials == 2 for s in studies)


def test_applying_one_experiment_gives_a_workspace_the_service_starts_from(queued):
    repo, env = queued
    applied = run_cmd(["dvc", "exp", "apply", "c-high"], repo, env=env, check=False)
    if applied.returncode:   # only the charlm outputs this tiny project never produced may fail
        failed = applied.stderr.split("Checkout failed for following targets:")[-1]
        listed = [line.strip() for line in failed.splitlines()
                  if re.fullmatch(r"[\w.-]+(/[\w.-]+)+", line.strip())]
        assert listed and all("charlm" in path for path in listed), applied.stderr[-3000:]
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params["train"]["sentiment"]["defaults"]["tfidf_logreg"]["C"] == 20.0
    from textrnn.serving import SentimentPredictor, find_champion

    # the service's own loader (the copy's charlm champion has no model: not trained here)
    predictor = SentimentPredictor.load(find_champion(repo / "models", "sentiment"))
    assert predictor.info.name in {"dummy", "tfidf_logreg"}
    probabilities = predictor.predict_proba(["a wonderful phone", "it broke in a day"])
    assert probabilities.shape == (2, 2)
