"""Tuning: search spaces from params.yaml, sampler and pruner choice, exact budgets, resume after a
kill, the best_params.json handoff to train, and the per-epoch pruning callback."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import ROOT, TESTS
from optuna.trial import TrialState

from textrnn.catalog import resolve_model, resolve_models
from textrnn.config import ModelTuneParams, SentimentNeuralParams, read_yaml
from textrnn.errors import ParamsError
from textrnn.tuning import space as spaces
from textrnn.tuning.study import (
    RETRY_ATTR,
    WORKER_ATTR,
    StudySpec,
    _params_of,
    counted_trials,
    finished,
    make_pruner,
    make_sampler,
    make_storage,
    run_trials,
)

WORKER = str(TESTS / "tuning_worker.py")
sys.path.insert(0, str(ROOT))  # stages/ (the handoff test reads best_params as train does)
import tuning_worker  # noqa: E402  (tests/, on sys.path by conftest)

# The grid users paste from a GridSearchCV param_grid (2 x 3 x 2 x 2 x 2 x 2 x 2 x 2 = 384 points).
PASTED_GRID = {
    "optimizer": ["adam", "rmsprop"], "learning_rate": [0.01, 0.001, 0.0005],
    "embedding_dim": [64, 128], "units": [64, 128], "dropout": [0.3, 0.5],
    "activation": ["relu", "tanh"], "batch_size": [32, 64], "epochs": [5, 10],
}


def _params_file(tmp_path: Path, model_tune: dict, model: str = "lstm") -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["tune"]["sentiment"]["models"][model] = model_tune
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def _resolved(path: Path, model: str = "lstm"):
    raw = read_yaml(path)
    return resolve_model("sentiment", model, raw["train"]["sentiment"], raw["tune"]["sentiment"])


def _tune(tmp_path: Path, model_tune: dict) -> ModelTuneParams:
    """How the lstm is tuned with ``model_tune`` as its tune.sentiment.models entry."""
    return _resolved(_params_file(tmp_path, model_tune)).tune


def _base() -> SentimentNeuralParams:
    return _resolved(ROOT / "params.yaml").params


def _enabled(**overrides) -> dict:
    tune = {"enabled": True, "sampler": "tpe", "pruner": "median", "n_trials": 4, "timeout_s": 0,
            "warmup_epochs": 1, "fixed": {}, "space": {"units": [32, 64]}}
    return {**tune, **overrides}


def _checked(tmp_path: Path, tune: dict) -> dict:
    settings = _tune(tmp_path, tune)
    try:
        return spaces.check_space(settings.space, _base(), key="tune.sentiment.models.lstm.space",
                                  fixed=settings.fixed)
    except ValueError as exc:
        raise ParamsError(str(exc)) from None


# ----------------------------------------------------------------------------- search spaces


def test_the_repository_params_parse_and_every_space_checks():
    raw = read_yaml(ROOT / "params.yaml")
    checked = 0
    for task in ("sentiment", "charlm"):
        for model, spec in resolve_models(task, raw["train"][task], raw["tune"][task]).items():
            if spec.tune is not None and spec.tune.enabled:
                spaces.check_space(spec.tune.space, spec.params,
                                   key=f"tune.{task}.models.{model}.space", fixed=spec.tune.fixed)
                checked += 1
    assert checked == 6 + 3     # every default model but the dummy


def test_a_pasted_grid_runs_as_categorical_choices(tmp_path):
    space = _checked(tmp_path, _enabled(sampler="grid", space=PASTED_GRID))
    assert spaces.grid_size(space) == 384
    assert space["learning_rate"] == spaces.Categorical((0.01, 0.001, 0.0005))
    study = optuna.create_study(sampler=make_sampler(_spec(space, sampler="grid"), seed=0))
    trial = study.ask()
    params = spaces.suggest(trial, space)
    assert set(params) == set(PASTED_GRID)
    assert all(params[name] in PASTED_GRID[name] for name in PASTED_GRID)


def test_ranges_int_float_and_log_scale(tmp_path):
    space = _checked(tmp_path, _enabled(space={
        "units": {"low": 32, "high": 256, "step": 32},
        "learning_rate": {"low": 0.0001, "high": 0.01, "log": True},
        "dropout": {"low": 0, "high": 0.5},            # int bounds over a float field
    }))
    assert space["units"] == spaces.Range(32, 256, step=32, integer=True)
    assert space["dropout"].integer is False
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = [spaces.suggest(study.ask(), space) for _ in range(30)]
    assert all(isinstance(p["units"], int) and p["units"] % 32 == 0 for p in seen)
    assert all(isinstance(p["dropout"], float) and 0 <= p["dropout"] <= 0.5 for p in seen)
    rates = [p["learning_rate"] for p in seen]
    # log scale: about as many draws below 0.001 (the geometric middle) as above it
    assert 8 <= sum(r < 0.001 for r in rates) <= 22
    dist = study.trials[0].distributions["learning_rate"]
    assert dist.log is True


@pytest.mark.parametrize(("entry", "message"), [
    (5, "neither a list of choices nor a range"),
    ([], "empty list"),
    ({"low": 0.1}, "needs both low and high"),
    ({"low": 0.5, "high": 0.1}, "low must be below high"),
    ({"low": 0.0, "high": 0.1, "log": True}, "log scale needs low > 0"),
    ({"low": 0.1, "high": 0.5, "scale": "log"}, "unknown range key 'scale'"),
    ([64, 64], "repeat a value"),
])
def test_a_malformed_entry_is_a_params_error_naming_the_key(tmp_path, entry, message):
    with pytest.raises(ParamsError) as err:
        _tune(tmp_path, _enabled(space={"units": entry}))
    assert "tune.sentiment.models.lstm.space.units" in str(err.value)
    assert message in str(err.value)


@pytest.mark.parametrize(("space", "message"), [
    ({"unitz": [32, 64]}, "'unitz' is not a hyperparameter of this model"),
    ({"optimizer": ["adam", "adamx"]}, "adamx"),
    ({"dropout": [0.3, 1.5]}, "dropout"),
    ({"units": {"low": 16.0, "high": 64.5}}, "is an integer"),
    ({"optimizer": {"low": 1, "high": 2}}, "not a range"),
])
def test_a_space_the_model_cannot_take_is_a_params_error(tmp_path, space, message):
    with pytest.raises(ParamsError) as err:
        _checked(tmp_path, _enabled(space=space))
    assert "tune.sentiment.models.lstm.space." in str(err.value)
    assert message in str(err.value)


def test_grid_sampler_refuses_ranges_and_enabled_needs_every_key(tmp_path):
    space = _checked(tmp_path, _enabled(space={"dropout": {"low": 0.1, "high": 0.5}}))
    with pytest.raises(ValueError, match="sampler grid needs a list of choices"):
        spaces.grid(space)
    with pytest.raises(ParamsError, match="n_trials"):   # a group without a budget
        _tune(tmp_path, {"enabled": True, "n_trials": None, "space": {"units": [1]}})
    assert _tune(tmp_path, {"enabled": False}).enabled is False
    with pytest.raises(ParamsError, match="sampler"):
        _tune(tmp_path, _enabled(sampler="bayes"))


# ----------------------------------------------------------------------------- sampler, pruner


def _spec(space=None, **overrides) -> StudySpec:
    values = dict(task="test", model="toy", direction="minimize",
                  space=space or tuning_worker.SPACE, sampler="tpe", pruner="median", n_trials=6,
                  timeout_s=0, warmup_epochs=2, max_epochs=9, seed=3,
                  defaults={"x": 0.0, "units": 32, "optimizer": "adam"})
    return StudySpec(**{**values, **overrides})


def test_sampler_and_pruner_follow_the_params():
    assert isinstance(make_sampler(_spec(sampler="random"), 1), optuna.samplers.RandomSampler)
    assert isinstance(make_sampler(_spec(sampler="tpe"), 1), optuna.samplers.TPESampler)
    grid = make_sampler(_spec(space=tuning_worker.GRID, sampler="grid"), 1)
    assert isinstance(grid, optuna.samplers.GridSampler)
    assert isinstance(make_pruner(_spec(pruner="none")), optuna.pruners.NopPruner)
    median = make_pruner(_spec(pruner="median"))
    assert isinstance(median, optuna.pruners.MedianPruner) and median._n_warmup_steps == 2
    band = make_pruner(_spec(pruner="hyperband"))
    assert isinstance(band, optuna.pruners.HyperbandPruner)
    assert (band._min_resource, band._max_resource) == (2, 9)
    # the study name changes with the space, not with the budget
    assert _spec(n_trials=6).name == _spec(n_trials=60, timeout_s=5).name
    assert _spec().name != _spec(space={"units": spaces.Categorical((16, 32))}).name


# ----------------------------------------------------------------------------- budget and resume


def _toy_objective(log: list):
    def objective(trial, params):
        value = tuning_worker.score(params)
        for epoch in range(3):
            trial.report(value + 2 - epoch, epoch + 1)
            if trial.should_prune():
                raise optuna.TrialPruned()
        log.append((trial.number, params))
        return value
    return objective


def test_budget_is_exact_defaults_run_first_and_best_is_never_worse(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    study = run_trials(_spec(n_trials=7), _toy_objective([]), storage_url=url, heartbeat_s=5,
                       progress=False)
    trials = study.get_trials()
    assert len(trials) == 7 and len(finished(trials)) == 7
    assert trials[0].params == {"x": 0.0, "units": 32, "optimizer": "adam"}
    assert trials[0].state == TrialState.COMPLETE
    assert study.best_value <= trials[0].value
    assert all(t.user_attrs[WORKER_ATTR].endswith(":" + str(__import__("os").getpid()))
               for t in trials)
    assert (tmp_path / ".gitignore").read_text().strip().endswith("*")
    # a second run with the same budget has nothing left to do; a larger budget continues
    again = run_trials(_spec(n_trials=7), _toy_objective(log := []), storage_url=url,
                       heartbeat_s=5, progress=False)
    assert log == [] and len(again.trials) == 7
    more = run_trials(_spec(n_trials=9), _toy_objective(log), storage_url=url, heartbeat_s=5,
                      progress=False)
    assert [n for n, _ in log] == [7, 8] and len(more.trials) == 9


def test_same_seed_same_trials(tmp_path):
    runs = []
    for name in ("a", "b"):
        log: list = []
        run_trials(_spec(n_trials=8, pruner="none"), _toy_objective(log),
                   storage_url=f"sqlite:///{tmp_path}/{name}.db", heartbeat_s=5, progress=False)
        runs.append(log)
    assert runs[0] == runs[1]


def test_grid_sampler_covers_the_grid_once_and_stops(tmp_path):
    log: list = []
    spec = _spec(space=tuning_worker.GRID, sampler="grid", n_trials=50, pruner="none",
                 defaults={"units": 32, "optimizer": "adam", "dropout": 0.1})
    study = run_trials(spec, _toy_objective(log), storage_url=f"sqlite:///{tmp_path}/g.db",
                       heartbeat_s=5, progress=False)
    points = [tuple(sorted(p.items())) for _, p in log]
    assert len(study.trials) == 12 == len(set(points))


def test_each_grid_id_stands_for_the_params_optuna_gave_it(tmp_path):
    # A dead grid trial is re-queued with the params of its grid id, which the project works
    # out itself (Optuna keeps its numbering of the grid private): it must be Optuna's.
    spec = _spec(space=tuning_worker.GRID, sampler="grid", n_trials=50, pruner="none",
                 defaults={"units": 32, "optimizer": "adam", "dropout": 0.1})
    study = run_trials(spec, _toy_objective([]), storage_url=f"sqlite:///{tmp_path}/g.db",
                       heartbeat_s=5, progress=False)
    trials = study.get_trials()
    assert sorted(t.system_attrs["grid_id"] for t in trials) == list(range(12))
    assert all(_params_of(study, t) == t.params for t in trials)


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_a_pasted_grid_numbers_its_points_as_optuna_does(seed):
    space = {name: spaces.parse_dimension(values) for name, values in PASTED_GRID.items()}
    spec = _spec(space=space, sampler="grid", seed=seed, n_trials=1000, defaults={})
    study = optuna.create_study(sampler=make_sampler(spec, seed))
    for _ in range(spec.budget):
        trial = study.ask()
        spaces.suggest(trial, spec.space)
        study.tell(trial, 0.0)
    trials = study.get_trials()
    assert sorted(t.system_attrs["grid_id"] for t in trials) == list(range(384))
    assert all(_params_of(study, t) == t.params for t in trials)


def _worker(tmp_path: Path, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, WORKER, f"sqlite:///{tmp_path}/studies.db", str(tmp_path / "log.jsonl"),
         *extra], capture_output=True, text=True, timeout=300,
    )
    if check and proc.returncode != 0:
        pytest.fail(f"worker exited {proc.returncode}: {proc.stderr[-3000:]}")
    return proc


def test_a_killed_tune_resumes_the_same_study(tmp_path):
    marker = tmp_path / "killed"
    first = _worker(tmp_path, "--n-trials", "8", "--kill-at", "3", "--kill-marker", str(marker),
                    check=False)
    assert first.returncode == -9 and marker.exists()  # SIGKILL: no cleanup ran
    storage = make_storage(f"sqlite:///{tmp_path}/studies.db", heartbeat_s=1)
    (summary,) = optuna.get_all_study_summaries(storage)
    assert summary.study_name == tuning_worker.spec("tpe", 8).name
    stuck = optuna.load_study(study_name=summary.study_name, storage=storage).trials
    assert [t.state for t in stuck] == [TrialState.COMPLETE] * 3 + [TrialState.RUNNING]

    _worker(tmp_path, "--n-trials", "8")
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    trials = study.trials
    assert len(optuna.get_all_study_summaries(storage)) == 1  # the same study, not a new one
    assert trials[3].state == TrialState.FAIL
    (retry,) = [t for t in trials if t.user_attrs.get(RETRY_ATTR) == 3]
    assert retry.params == trials[3].params and retry.state == TrialState.COMPLETE
    assert len(finished(trials)) == 8 and len(counted_trials(trials)) == 8
    logged = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert sorted(row["number"] for row in logged) == sorted(t.number for t in finished(trials))


def test_a_remote_worker_gone_silent_is_failed_and_requeued(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    spec = _spec(n_trials=4, pruner="none")
    storage, ghost = _study_with_a_running_trial(url, spec)
    ghost.set_user_attr(WORKER_ATTR, "another-machine:1")
    trial_id = storage.get_trial_id_from_study_id_trial_number(
        storage.get_study_id_from_name(spec.name), ghost.number)
    storage.record_heartbeat(trial_id)  # then nothing more: that machine is gone
    _assert_requeued_and_completed(url, spec, ghost.number)


def _study_with_a_running_trial(url: str, spec: StudySpec):
    """A study whose one trial is RUNNING with nobody running it: (storage, that trial)."""
    storage = make_storage(url, heartbeat_s=1)
    study = optuna.create_study(study_name=spec.name, storage=storage, direction="minimize")
    return storage, study.ask({"x": optuna.distributions.FloatDistribution(-4, 4)})


def _assert_requeued_and_completed(url: str, spec: StudySpec, ghost: int) -> None:
    """A worker fails the ghost trial, runs its params again, and uses the budget exactly."""
    study = run_trials(spec, _toy_objective([]), storage_url=url, heartbeat_s=1, progress=False,
                       enqueue_defaults=False)
    trials = study.get_trials()
    assert trials[ghost].state == TrialState.FAIL
    assert any(t.user_attrs.get(RETRY_ATTR) == ghost for t in finished(trials))
    assert len(finished(trials)) == spec.budget
    assert not [t for t in trials if not t.state.is_finished()]


@pytest.mark.timeout(120)  # the bug this pins made the study wait for ever
def test_a_worker_killed_before_its_first_heartbeat_is_failed_after_the_grace_period(tmp_path):
    # Killed between taking the trial and writing its name or a heartbeat: neither the local
    # process check nor Optuna's heartbeat check can see it; its age does (grace: 4 x 1 s).
    url = f"sqlite:///{tmp_path}/s.db"
    spec = _spec(n_trials=3, pruner="none")
    _, ghost = _study_with_a_running_trial(url, spec)
    _assert_requeued_and_completed(url, spec, ghost.number)


def test_a_killed_worker_left_as_a_zombie_counts_as_dead():
    # A container whose first process reaps nothing keeps a killed worker as a zombie, which
    # `kill -0` still finds: the resumed study waited on it for ever.
    from textrnn.tuning.study import _process_alive

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert _process_alive(child.pid)
        child.kill()
        for _ in range(100):  # until the kernel has made it a zombie (not reaped: no wait())
            if Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z":
                break
            time.sleep(0.05)
        assert not _process_alive(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not _process_alive(child.pid)


# ----------------------------------------------------------------------------- handoff to train


def _job(tmp_path: Path, settings: ModelTuneParams | None):
    from textrnn.tuning.runner import TuneJob

    return TuneJob(task="sentiment", model="lstm", settings=settings, base=_base(),
                   metric="val_accuracy", direction="maximize", seed=42,
                   storage=f"sqlite:///{tmp_path}/studies.db", heartbeat_s=5, context={"data": "x"})


def test_best_params_handoff_to_train(tmp_path):
    from textrnn.config import TrackingParams
    from textrnn.handoff import tuned_params
    from textrnn.tuning.runner import tune

    tracking = TrackingParams(uri=f"sqlite:///{tmp_path}/mlflow.db", experiment="t")
    off_path, on_path = tmp_path / "off" / "best_params.json", tmp_path / "on" / "best_params.json"
    tune(_job(tmp_path, ModelTuneParams(enabled=False)), None, max_epochs=1,
         tracking_params=tracking, best_params_path=off_path, plots_dir=tmp_path / "off_plots",
         progress=False)
    assert json.loads(off_path.read_text()) == {"tuned": False, "params": {}}
    assert tuned_params(_base(), off_path) == (_base(), False, {})
    assert (tmp_path / "off_plots" / "optimization_history.png").stat().st_size > 0

    settings = ModelTuneParams(**{**_enabled(n_trials=4, space={
        "units": spaces.parse_dimension([32, 64, 128]),
        "learning_rate": spaces.parse_dimension({"low": 0.001, "high": 0.01, "log": True})})})

    def objective(trial, params):  # more units and a rate near 0.004 score higher
        for epoch in (1, 2):
            trial.report(0.5, epoch)
        return params["units"] / 1000 - abs(params["learning_rate"] - 0.004)

    doc = tune(_job(tmp_path, settings), objective, max_epochs=2, tracking_params=tracking,
               best_params_path=on_path, plots_dir=tmp_path / "on_plots", progress=False)
    written = json.loads(on_path.read_text())
    assert written == json.loads(json.dumps(doc)) and written["tuned"] is True
    assert written["n_trials"] == 4 and set(written["params"]) == {"units", "learning_rate"}
    trained, tuned, changes = tuned_params(_base(), on_path)
    assert tuned is True
    assert {k: new for k, (_, new) in changes.items()} == {
        k: v for k, v in written["params"].items() if getattr(_base(), k) != v}
    assert (trained.units, trained.learning_rate) == (written["params"]["units"],
                                                      written["params"]["learning_rate"])
    assert written["value"] >= _base().units / 1000 - abs(_base().learning_rate - 0.004)
    table = (tmp_path / "on_plots" / "trials.csv").read_text().splitlines()
    assert len(table) == 1 + 4 and table[0].startswith("number,state,value,best_value")
    import mlflow

    runs = mlflow.search_runs(experiment_names=["t"])
    children = runs[runs["tags.mlflow.parentRunId"].notna()]
    assert len(children) == 4 and set(children["tags.state"]) == {"complete"}


def test_trial_reporter_reports_every_epoch_and_stops_a_pruned_trial():
    import keras
    import numpy as np

    from textrnn.tuning.keras_pruning import TrialReporter

    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(
        lower=2.0, n_warmup_steps=2))  # any accuracy is below 2: pruned once warm-up is over
    trial = study.ask()
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    reporter = TrialReporter(trial, "val_accuracy")
    history = model.fit(x, y, validation_data=(x, y), epochs=10, verbose=0, callbacks=[reporter])
    assert reporter.pruned and len(history.history["loss"]) == 2
    assert sorted(study.trials[0].intermediate_values) == [1, 2]


def test_a_trial_killed_before_it_had_params_is_requeued_with_the_params_it_was_given():
    import optuna

    from textrnn.tuning.study import requeue

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = {"units": [8, 16], "lr": [0.1, 0.2]}
    spec = _spec(space={name: spaces.Categorical(tuple(values)) for name, values in space.items()},
                 sampler="grid")
    grid = optuna.create_study(sampler=make_sampler(spec, 0))
    dead = grid.ask()                       # created, but killed before suggesting anything
    frozen = grid.trials[dead.number]
    assert frozen.params == {}
    point = _params_of(grid, frozen)
    assert set(point) == {"units", "lr"} and point["units"] in (8, 16) and point["lr"] in (0.1, 0.2)
    requeue(grid, frozen)
    retry = grid.ask()
    assert {name: retry.suggest_categorical(name, values)
            for name, values in space.items()} == point
    assert grid.trials[retry.number].user_attrs[RETRY_ATTR] == dead.number

    tpe = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    tpe.enqueue_trial({"units": 16})
    tpe.ask()
    assert _params_of(tpe, tpe.get_trials()[-1]) == {"units": 16}   # the enqueued values
    tpe.ask()
    unknown = tpe.get_trials()[-1]
    assert unknown.params == {} and "fixed_params" not in unknown.system_attrs
    requeue(tpe, unknown)                   # nothing to repeat: the sampler will pick anew
    assert [t for t in tpe.trials if t.state == optuna.trial.TrialState.WAITING] == []
