"""Two tune workers share one study on a real PostgreSQL server: the trials add up to the budget,
none lost, none run twice.

The test starts its own throw-away cluster (initdb + pg_ctl in a temporary folder, a free port,
trust authentication on 127.0.0.1 only). PostgreSQL refuses to run as root, so under root the
cluster runs as the ``postgres`` system user (the Debian package creates it). Skipped, with the
reason, only when the PostgreSQL server binaries are not installed (CI installs them).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import tuning_worker  # tests/tuning_worker.py (tests/ is on sys.path: see conftest)
from conftest import TESTS
from optuna.trial import TrialState
from postgres import postgres_cluster  # noqa: F401 (the shared throw-away server)

from textrnn.tuning.study import RETRY_ATTR, WORKER_ATTR, counted_trials, finished, make_storage

WORKER = str(TESTS / "tuning_worker.py")

_databases = iter(range(1000))


@pytest.fixture
def postgres_url(postgres_cluster) -> str:  # noqa: F811 (the fixture imported above)
    """A fresh, empty database on the module's server."""
    return postgres_cluster(f"optuna{next(_databases)}")


def _two_workers(url: str, log: Path, *args: str) -> None:
    cmd = [sys.executable, WORKER, url, str(log), *args]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]


def _check(url: str, sampler: str, n_trials: int, log: Path) -> list:
    storage = make_storage(url, heartbeat_s=1)
    study = optuna.load_study(study_name=tuning_worker.spec(sampler, n_trials).name,
                              storage=storage)
    trials = study.get_trials()
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    # the budget, exactly: every trial finished, none left running or waiting
    assert len(trials) == len(counted_trials(trials)) == len(finished(trials)) == n_trials
    assert all(t.state == TrialState.COMPLETE for t in trials)
    # none lost: every trial of the study was evaluated by a worker, and logged by it ...
    assert sorted(row["number"] for row in rows) == [t.number for t in trials]
    # ... none duplicated: each trial evaluated by exactly one worker
    assert len({row["number"] for row in rows}) == len(rows)
    # both workers took part, in separate processes
    assert len({row["pid"] for row in rows}) == 2
    assert len({t.user_attrs[WORKER_ATTR] for t in trials}) == 2
    return rows


def test_two_workers_share_one_tpe_study_and_use_the_budget_exactly(postgres_url, tmp_path):
    log = tmp_path / "log.jsonl"
    _two_workers(postgres_url, log, "--sampler", "tpe", "--n-trials", "16", "--sleep", "0.05")
    _check(postgres_url, "tpe", 16, log)


def test_two_workers_on_a_grid_evaluate_every_point_once(postgres_url, tmp_path):
    log = tmp_path / "log.jsonl"
    _two_workers(postgres_url, log, "--sampler", "grid", "--n-trials", "100", "--sleep", "0.05")
    rows = _check(postgres_url, "grid", 12, log)  # the grid has 3 x 2 x 2 = 12 points
    points = {tuple(sorted(row["params"].items())) for row in rows}
    assert len(points) == 12


def test_a_worker_killed_mid_trial_loses_nothing(postgres_url, tmp_path):
    """Worker A is killed in trial 3; worker B (and A restarted) finish the study, trial 3's
    params re-run once, and the budget still adds up."""
    log, marker = tmp_path / "log.jsonl", tmp_path / "killed"
    cmd = [sys.executable, WORKER, postgres_url, str(log), "--n-trials", "10", "--sleep", "0.1",
           "--kill-at", "3", "--kill-marker", str(marker)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    codes = sorted(proc.wait(timeout=600) for proc in procs)
    assert codes == [-9, 0] and marker.exists()
    storage = make_storage(postgres_url, heartbeat_s=1)
    study = optuna.load_study(study_name=tuning_worker.spec("tpe", 10).name, storage=storage)
    trials = study.get_trials()
    killed = trials[3]
    assert killed.state == TrialState.FAIL
    (retry,) = [t for t in trials if t.user_attrs.get(RETRY_ATTR) == 3]
    assert retry.params == killed.params and retry.state == TrialState.COMPLETE
    assert len(finished(trials)) == len(counted_trials(trials)) == 10
    assert all(t.state.is_finished() for t in trials)
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted(row["number"] for row in rows) == sorted(t.number for t in finished(trials))


def test_a_storage_url_written_for_psycopg2_runs_on_psycopg_3(postgres_url, tmp_path):
    """``postgresql+psycopg2://``, as the docs once said, still works, with psycopg2 not there
    (hidden from the worker, should an old install still have it): psycopg 3 serves it."""
    url = postgres_url.replace("postgresql://", "postgresql+psycopg2://", 1)
    log = tmp_path / "log.jsonl"
    worker = ("import runpy, sys; sys.modules['psycopg2'] = None; sys.argv = sys.argv[1:]; "
              "runpy.run_path(sys.argv[0], run_name='__main__')")
    cmd = [sys.executable, "-c", worker, WORKER, url, str(log), "--n-trials", "3", "--sleep", "0"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    study = optuna.load_study(study_name=tuning_worker.spec("tpe", 3).name,
                              storage=make_storage(url, heartbeat_s=1))
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE] * 3
