"""Working as a team: the pipeline logs to a shared MLflow tracking server (PostgreSQL behind it,
a shared artifact folder) with nothing changed but tracking.uri, and a DVC remote carries the data
and models to a fresh clone, where `dvc repro` then has nothing to do."""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml
from conftest import run_cmd
from postgres import postgres_cluster  # noqa: F401 (a fixture)
from tiny_pipeline import TARGET, TINY_MODELS, MlflowServer, commit, make_repo, repro

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


@pytest.fixture(scope="module")
def server(postgres_cluster, tmp_path_factory):  # noqa: F811
    """`mlflow server` over a PostgreSQL database, artifacts in a shared folder it serves."""
    base = tmp_path_factory.mktemp("tracking-server")
    artifacts = base / "artifacts"
    artifacts.mkdir()
    # the server command of docs/tracking.md: +psycopg names the pinned driver, psycopg 3
    database = postgres_cluster("mlflow").replace("postgresql://", "postgresql+psycopg://", 1)
    with MlflowServer(base / "server.log", "--backend-store-uri", database,
                      "--artifacts-destination", str(artifacts)) as running:
        yield running, artifacts


@pytest.fixture(scope="module")
def team_repo(server, mirror, tmp_path_factory):
    """The tiny pipeline, run once with tracking.uri pointing at the server."""
    running, _ = server
    repo = make_repo(tmp_path_factory.mktemp("team") / "repo", running.url)
    env = {"TEXTRNN_DATA_MIRROR": str(mirror)}
    repro(repo, env)
    return repo, env


def test_the_pipeline_logs_runs_and_models_to_the_tracking_server(server, team_repo):
    import mlflow

    running, artifacts = server
    repo, _ = team_repo
    client = mlflow.MlflowClient(tracking_uri=running.url)
    experiment = client.get_experiment_by_name("textrnn")
    runs = client.search_runs([experiment.experiment_id], "tags.dvc_stage LIKE 'train_%'")
    by_model = {run.data.tags["model"]: run for run in runs}
    assert sorted(by_model) == sorted(TINY_MODELS)
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    (split_out,) = [out for out in lock["stages"]["split@sentiment"]["outs"]
                    if out["path"] == "data/split/sentiment"]
    commit_sha = run_cmd(["git", "rev-parse", "HEAD"], repo).stdout.strip()
    for name, run in by_model.items():
        meta = json.loads((repo / f"models/sentiment/{name}/model/meta.json").read_text())
        assert meta["mlflow_run_id"] == run.info.run_id            # model folder -> run
        assert run.data.tags["git_commit"] == commit_sha              # run -> commit
        assert run.data.tags["dvc_dep.data/split/sentiment"] == split_out["md5"]   # run -> data
        assert "val/accuracy" in run.data.metrics
        assert "test/accuracy" in run.data.metrics                    # added by evaluate
    # the run's artifacts went through the server into the shared folder
    stored = [path for path in artifacts.rglob("*") if path.is_file()]
    assert any(path.name == "meta.json" for path in stored), stored[:20]


def test_the_champion_is_registered_on_the_server_as_evaluate_chose(server, team_repo, tmp_path):
    import mlflow
    import numpy as np

    from textrnn import registry
    from textrnn.sentiment import models as sentiment_models

    running, _ = server
    repo, _ = team_repo
    champion = json.loads((repo / "models/sentiment/champion.json").read_text())["model"]
    client = mlflow.MlflowClient(tracking_uri=running.url)
    versions = client.search_model_versions("name='textrnn-sentiment'")
    assert sorted(v.tags["model"] for v in versions) == sorted(TINY_MODELS)
    assert client.get_model_version_by_alias("textrnn-sentiment", "champion").tags["model"] == \
        champion
    # downloaded through the server, the champion answers as the workspace's model does
    folder, _ = registry.download_champion("sentiment", tmp_path, tracking_uri=running.url)
    texts = ["a wonderful phone, works great", "it broke after a day"]
    np.testing.assert_allclose(
        sentiment_models.load(folder).predict_proba(texts),
        sentiment_models.load(repo / f"models/sentiment/{champion}/model").predict_proba(texts))


def test_dvc_remote_round_trip_leaves_nothing_to_reproduce(team_repo, tmp_path):
    repo, env = team_repo
    remote = tmp_path / "dvc-remote"
    run_cmd(["dvc", "remote", "add", "-d", "shared", str(remote)], repo)
    commit(repo, "pipeline run, DVC remote")
    # the tiny run ran the sentiment stages only: push and pull those (a full run: plain push/pull)
    run_cmd(["dvc", "push", "--with-deps", TARGET], repo, timeout=600)

    clone = tmp_path / "clone"
    run_cmd(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    assert not (clone / "data/split/sentiment").exists()
    run_cmd(["dvc", "pull", "--with-deps", TARGET], clone, timeout=600)
    for path in ("data/split/sentiment/test.parquet",
                 "models/sentiment/tfidf_logreg/model/model.skops"):
        assert _sha256(clone / path) == _sha256(repo / path), path
    status = run_cmd(["dvc", "status", TARGET], clone, env=env).stdout
    assert "up to date" in status, status
    output = run_cmd(["dvc", "repro", TARGET], clone, env=env, timeout=600).stdout
    assert "Running stage" not in output, output


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
