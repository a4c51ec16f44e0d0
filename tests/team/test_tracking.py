"""MLflow cross-links and failure modes: every run leads back to its commit, data and params, and a
dead tracking server is one line within seconds, not minutes of retries."""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
import subprocess
import sys
import threading
import time

import pytest

from textrnn import tracking
from textrnn.errors import UserError

LOCK = """\
schema: '2.0'
stages:
  split@sentiment:
    cmd: python -m stages.split sentiment
    outs:
    - path: data/split/sentiment
      hash: md5
      md5: 0123456789abcdef0123456789abcdef.dir
      size: 10
      nfiles: 3
  split@charlm:
    cmd: python -m stages.split charlm
    outs:
    - path: data/split/charlm
      hash: md5
      md5: fedcba9876543210fedcba9876543210.dir
      size: 10
      nfiles: 3
"""


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]      # nothing listens once the socket is closed


# ----------------------------------------------------------------------------- the hashes


def test_params_hash_is_sha256_of_canonical_json_and_ignores_key_order():
    params = {"model": "lstm", "params": {"units": 64, "dropout": 0.3}, "seed": 42}
    canonical = '{"model":"lstm","params":{"dropout":0.3,"units":64},"seed":42}'
    assert tracking.params_hash(params) == hashlib.sha256(canonical.encode()).hexdigest()
    reordered = {"seed": 42, "params": {"dropout": 0.3, "units": 64}, "model": "lstm"}
    assert tracking.params_hash(reordered) == tracking.params_hash(params)
    changed = {**params, "params": {"units": 65, "dropout": 0.3}}
    assert tracking.params_hash(changed) != tracking.params_hash(params)


@pytest.mark.parametrize(("stage", "expected"), [
    ("train_sentiment@lstm", {"data/split/sentiment": "0123456789abcdef0123456789abcdef.dir"}),
    ("tune_sentiment@gru", {"data/split/sentiment": "0123456789abcdef0123456789abcdef.dir"}),
    ("evaluate_charlm", {"data/split/charlm": "fedcba9876543210fedcba9876543210.dir"}),
    ("fetch@sentiment", {}),
])
def test_data_hashes_come_from_the_split_outs_in_dvc_lock(tmp_path, stage, expected):
    (tmp_path / "dvc.lock").write_text(LOCK)
    assert tracking.data_hashes(stage, tmp_path / "dvc.lock") == expected


def test_no_or_broken_lock_file_loses_the_tags_not_the_run(tmp_path):
    assert tracking.data_hashes("train_sentiment@lstm", tmp_path / "dvc.lock") == {}
    (tmp_path / "dvc.lock").write_text("stages: [unclosed")
    assert tracking.data_hashes("train_sentiment@lstm", tmp_path / "dvc.lock") == {}


# ----------------------------------------------------------------------------- runs


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A fresh SQLite tracking store, and the MLflow URI that was set before (restored after)."""
    import mlflow

    before = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    tracking.configure(uri, "test-tracking")
    yield uri
    mlflow.set_tracking_uri(before)


def test_start_run_tags_commit_stage_data_and_params_automatically(store, tmp_path, monkeypatch):
    import mlflow

    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "dvc.lock").write_text(LOCK)
    subprocess.run(["git", "add", "dvc.lock"], cwd=tmp_path, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
                   cwd=tmp_path, check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, text=True,
                            capture_output=True, check=True).stdout.strip()
    monkeypatch.chdir(tmp_path)       # stages run at the repository root
    params = {"model": "lstm", "params": {"units": 64}}
    with tracking.start_run(run_name="sentiment/lstm", stage="train_sentiment@lstm",
                            params=params, tags={"task": "sentiment"}) as run:
        pass
    logged = mlflow.get_run(run.info.run_id).data
    assert logged.tags["git_commit"] == commit and logged.tags["git_dirty"] == "false"
    assert logged.tags["dvc_stage"] == "train_sentiment@lstm"
    assert logged.tags["dvc_dep.data/split/sentiment"] == "0123456789abcdef0123456789abcdef.dir"
    assert logged.tags["params_sha256"] == tracking.params_hash(params)
    assert logged.tags["task"] == "sentiment"
    assert logged.params == {"model": "lstm", "params.units": "64"}

    (tmp_path / "dvc.lock").write_text(LOCK + "\n")            # a change git sees
    with tracking.start_run(run_name="x", stage="evaluate_charlm",
                            tags={"dvc_stage": "mine"}) as run:   # the caller's tags win
        pass
    logged = mlflow.get_run(run.info.run_id).data
    assert logged.tags["git_dirty"] == "true" and logged.tags["dvc_stage"] == "mine"
    assert logged.tags["dvc_dep.data/split/charlm"] == "fedcba9876543210fedcba9876543210.dir"
    assert logged.tags["params_sha256"] == tracking.params_hash({})


# ----------------------------------------------------------------------------- failure modes


def test_unreachable_server_fails_a_stage_within_seconds_in_one_line(tmp_path):
    """What a stage prints when tracking.uri names a server that is down: one line, exit 2."""
    uri = f"http://127.0.0.1:{closed_port()}"
    code = ("from textrnn import tracking; from textrnn.stage import run; "
            f"run(lambda: tracking.configure({uri!r}, 'textrnn'))")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: MLflow tracking server '{uri}' is not reachable")
    assert "tracking.uri: sqlite:///mlflow.db" in lines[0]        # how to fall back
    assert elapsed < 30, f"took {elapsed:.0f} s"                 # python + mlflow import included


class _Failing(http.server.BaseHTTPRequestHandler):
    """Answers /health, then 503 to every API call: MLflow would retry 7 times with backoff."""

    calls = 0

    def do_GET(self):  # noqa: N802
        if self.path == "/health":
            self._reply(200, b"OK")
        else:
            type(self).calls += 1
            self._reply(503, b'{"error_code": "TEMPORARILY_UNAVAILABLE"}')

    do_POST = do_GET  # noqa: N815

    def _reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_server_that_answers_with_errors_fails_fast_without_minutes_of_retries():
    import mlflow

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    before = mlflow.get_tracking_uri()
    uri = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        started = time.monotonic()
        with pytest.raises(UserError, match="not reachable.*sqlite:///mlflow.db") as caught:
            tracking.configure(uri, "textrnn")
        elapsed = time.monotonic() - started
    finally:
        server.shutdown()
        mlflow.set_tracking_uri(before)
    assert "\n" not in str(caught.value)
    assert _Failing.calls <= 2 * (int(tracking.CHECK_RETRIES) + 1)  # MLflow's default: 8 calls
    assert elapsed < 20, f"took {elapsed:.0f} s"
    import os

    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ   # the training run keeps defaults


# ----------------------------------------------------------------------------- make ui


def test_ui_command_serves_the_params_store_on_loopback_only(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(json.dumps({"tracking": {"uri": "sqlite:///mlflow.db",
                                               "experiment": "textrnn"}}))
    command = tracking.ui_command(params, port=5123)
    assert command[1:] == ["ui", "--backend-store-uri", "sqlite:///mlflow.db",
                           "--host", "127.0.0.1", "--port", "5123", "--workers", "1"]
    params.write_text(json.dumps({"tracking": {"uri": "http://mlflow.example:5000",
                                               "experiment": "textrnn"}}))
    assert tracking.ui_command(params) is None      # a server has its own UI


def test_runs_name_their_dataset_and_dvc_experiment_and_the_ui_opens_on_them(tmp_path,
                                                                             monkeypatch):
    """In the MLflow UI, runs of different datasets and DVC experiments are told apart (name,
    tags, Dataset column); the experiment is one of model training; `textrnn ui` names its page."""
    import mlflow
    import pandas as pd

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DVC_EXP_NAME", "exp-imdb-1")
    tracking.configure("sqlite:///mlflow.db", "textrnn")
    frame = pd.DataFrame({"text": ["good", "bad"], "label": ["positive", "negative"]})
    with tracking.start_run(run_name="sentiment/lstm", stage="train_sentiment@lstm",
                            dataset="imdb") as run:
        tracking.log_splits("imdb", {"train": frame, "validation": frame.head(1)},
                            targets="label", source="data/split/sentiment")
    logged = mlflow.get_run(run.info.run_id)
    assert logged.info.run_name == "sentiment/lstm · imdb · exp-imdb-1"
    assert logged.data.tags["dataset"] == "imdb"
    assert logged.data.tags["dvc_experiment"] == "exp-imdb-1"
    inputs = {(i.dataset.name, tuple(t.value for t in i.tags)) for i in
              logged.inputs.dataset_inputs}
    assert inputs == {("imdb/train", ("train",)), ("imdb/validation", ("validation",))}
    experiment = mlflow.get_experiment_by_name("textrnn")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert experiment.artifact_location == (tmp_path / "mlruns").as_uri()
    (tmp_path / "params.yaml").write_text(json.dumps(
        {"tracking": {"uri": "sqlite:///mlflow.db", "experiment": "textrnn"}}))
    assert tracking.runs_page(tmp_path / "params.yaml") == \
        f"/#/experiments/{experiment.experiment_id}"


def test_a_queued_experiments_copy_logs_to_the_projects_stores(tmp_path, monkeypatch):
    """DVC runs a queued experiment in <project>/.dvc/tmp/exps/<tmp>/: relative SQLite stores
    resolve to the project's files, not to throw-away copies."""
    from textrnn import paths

    copy = tmp_path / ".dvc" / "tmp" / "exps" / "tmpab12cd"
    copy.mkdir(parents=True)
    monkeypatch.chdir(copy)
    assert paths.project_dir() == tmp_path.resolve()
    assert paths.store_url("sqlite:///mlflow.db") == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    studies = "sqlite:///.tune/studies.db"
    assert paths.sqlite_file(studies) == tmp_path.resolve() / ".tune/studies.db"
    assert paths.store_url(studies).startswith(f"sqlite:///{tmp_path.resolve()}/")
    assert paths.store_url("sqlite:////abs/x.db") == "sqlite:////abs/x.db"
    assert paths.store_url("http://mlflow:5000") == "http://mlflow:5000"
    assert paths.store_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg://u@h/db"
    monkeypatch.chdir(tmp_path)
    assert paths.project_dir() == tmp_path.resolve()
