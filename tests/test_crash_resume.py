"""Crash and resume: SIGKILL `dvc repro` while a train stage is mid-run, then rerun it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from conftest import copy_repo, run_cmd

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

LSTM = {"embedding_dim": 16, "units": 16, "dense_units": 8, "epochs": 8, "patience": 8,
        "batch_size": 32}
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
        "train": {"sentiment": {"lstm": LSTM}},
        "tune": {"sentiment": {"models": {m: {"enabled": False} for m in MODELS}}},
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
