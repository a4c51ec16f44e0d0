"""Crash and resume: SIGKILL `dvc repro` while a train stage is mid-epoch or a tune stage is
mid-trial, then rerun it: it picks up where it was and leaves nothing partial behind."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time

import pytest
from conftest import copy_repo, run_cmd

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

LSTM = {"embedding_dim": 16, "units": 16, "dense_units": 8, "epochs": 8, "patience": 8,
        "batch_size": 32, "embedding_init": "random"}
MODELS = ["dummy", "tfidf_logreg", "dnn", "simple_rnn", "lstm", "gru", "bilstm"]


def _leftovers(repo) -> list[str]:
    """Temporary files or folders of an interrupted write, anywhere in the outputs."""
    found = []
    for top in ("models", "metrics", "plots"):
        for path in (repo / top).rglob("*"):
            if path.name.startswith(".") and (".tmp" in path.name or path.name.endswith(".old")):
                found.append(str(path.relative_to(repo)))
    return found


def test_a_killed_train_stage_resumes_from_its_last_epoch(tmp_path, mirror):
    repo = copy_repo(tmp_path / "repo", {
        "train": {"sentiment": {"variants": {"lstm": LSTM}}},
        "tune": {"sentiment": {"models": {m: {"enabled": False} for m in MODELS}}},
        "embeddings": {"corpus": "none"},
        "pretrain": {"corpus": "none"},
    })
    env = {**os.environ, "TEXTRNN_DATA_MIRROR": str(mirror)}
    run_cmd(["dvc", "repro", "tune_sentiment@lstm"], repo, env=env)
    proc = subprocess.Popen(["dvc", "repro", "train_sentiment@lstm"], cwd=repo, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    seen, deadline = [], time.monotonic() + 600
    for line in proc.stdout:
        seen.append(line)
        if line.lstrip().startswith("epoch 2/") or time.monotonic() > deadline:
            break
    os.killpg(proc.pid, signal.SIGKILL)  # DVC and the stage, mid-epoch 3
    proc.wait(timeout=60)
    assert any(line.lstrip().startswith("epoch 2/") for line in seen), "".join(seen)[-3000:]
    assert not (repo / "models/sentiment/lstm/model").exists()
    assert not (repo / "plots/sentiment/history/lstm.csv").exists()
    assert _leftovers(repo) == []

    again = run_cmd(["dvc", "repro", "train_sentiment@lstm"], repo, env=env)
    log = again.stdout + again.stderr
    resumed = [line for line in log.splitlines() if "resuming at epoch" in line]
    assert resumed, log[-3000:]
    # epoch 2 may or may not have made its backup before the kill; epoch 1 surely did
    assert int(resumed[0].split("resuming at epoch")[1].split()[0]) >= 2
    assert "epoch 1/" not in log  # the finished epochs were not trained again
    meta = json.loads((repo / "models/sentiment/lstm/model/meta.json").read_text())
    assert len((repo / "plots/sentiment/history/lstm.csv").read_text().splitlines()) == 1 + 8
    assert _leftovers(repo) == []

    # Within run-to-run noise of an uninterrupted run (the shuffle order differs after a resume).
    run_cmd(["dvc", "repro", "--force", "-s", "train_sentiment@lstm"], repo, env=env)
    fresh = json.loads((repo / "models/sentiment/lstm/model/meta.json").read_text())
    assert abs(fresh["val_metrics"]["accuracy"] - meta["val_metrics"]["accuracy"]) < 0.05


TUNE_LSTM = {**LSTM, "epochs": 3, "patience": 3, "units": 8, "embedding_dim": 8}
TUNE = {"enabled": True, "sampler": "grid", "pruner": "none", "n_trials": 4, "timeout_s": 0,
        "warmup_epochs": 1, "fixed": {},
        "space": {"units": [8, 16], "learning_rate": [0.002, 0.01], "dropout": [0.5]}}


def _trial_states(db) -> list[str]:
    if not db.is_file():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        try:
            return [row[0] for row in conn.execute("SELECT state FROM trials ORDER BY number")]
        except sqlite3.OperationalError:  # tables not created yet
            return []


def _trial_results(db, study: str) -> list[tuple[dict, float]]:
    """The completed trials of ``study`` as (params, score), in grid order (sorted by params)."""
    import optuna

    trials = optuna.load_study(study_name=study, storage=f"sqlite:///{db}").get_trials(
        deepcopy=False, states=[optuna.trial.TrialState.COMPLETE])
    return sorted(((t.params, t.value) for t in trials), key=lambda row: sorted(row[0].items()))


def test_a_killed_tune_stage_resumes_its_study_and_finds_the_same_best(tmp_path, mirror):
    repo = copy_repo(tmp_path / "repo", {
        "train": {"sentiment": {"variants": {"lstm": TUNE_LSTM}}},
        "tune": {"sentiment": {"models": {"lstm": TUNE}}},
        "embeddings": {"corpus": "none"},
        "pretrain": {"corpus": "none"},
    })
    env = {**os.environ, "TEXTRNN_DATA_MIRROR": str(mirror)}
    run_cmd(["dvc", "repro", "embed"], repo, env=env)
    db = repo / ".tune/studies.db"
    proc = subprocess.Popen(["dvc", "repro", "tune_sentiment@lstm"], cwd=repo, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 600
    states: list[str] = []
    # kill once a trial has finished and the next one is running
    while time.monotonic() < deadline and proc.poll() is None:
        states = _trial_states(db)
        if "COMPLETE" in states and states[-1] == "RUNNING":
            break
        time.sleep(0.2)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    output = proc.communicate(timeout=60)[0]
    assert "COMPLETE" in states and states[-1] == "RUNNING", (states, output[-3000:])
    assert not (repo / "models/sentiment/lstm/best_params.json").exists()
    assert _leftovers(repo) == []

    again = run_cmd(["dvc", "repro", "tune_sentiment@lstm"], repo, env=env)
    log = again.stdout + again.stderr
    assert "resuming with" in log and "re-queued with the same params" in log, log[-3000:]
    assert "of 4 trials done" in log
    resumed = json.loads((repo / "models/sentiment/lstm/best_params.json").read_text())
    assert _trial_states(db).count("COMPLETE") == 4
    assert _leftovers(repo) == []

    # An uninterrupted study (fresh store) tries the same four grid points, each trial seeded
    # alike: every grid point scores the same, so the best score is the same (and the best
    # params too, but for a tie between grid points, which either study may break either way).
    resumed_trials = _trial_results(db, resumed["study"])
    db.unlink()
    run_cmd(["dvc", "repro", "--force", "-s", "tune_sentiment@lstm"], repo, env=env)
    fresh = json.loads((repo / "models/sentiment/lstm/best_params.json").read_text())
    assert _trial_results(db, fresh["study"]) == resumed_trials
    assert fresh["value"] == resumed["value"]
    assert {**fresh["params"], "score": fresh["value"]} in [
        {**params, "score": value} for params, value in resumed_trials]
