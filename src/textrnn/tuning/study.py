"""One Optuna study shared by any number of worker processes, on one machine or several.

Budget, exactly: the study runs ``n_trials`` trials in total, however many workers join. Each
worker claims its next trial under a lock (a file lock beside a SQLite file, an advisory lock
in PostgreSQL), so two workers never both take the last slot, and the grid sampler never gives
one grid point to two workers. A trial whose worker dies (killed, machine lost) is failed and
re-queued with the same params: on this machine at once (its process is gone), elsewhere when
its heartbeat stops. A failed-and-requeued trial does not count; its retry does.

Determinism: the sampler of each claim is seeded with ``seed + number of trials so far``, so
the params of trial *n* depend only on the study's history, whether the study ran in one go or
was killed and resumed.

Why one file of this length: claiming, heartbeats, re-queueing and resume share one lock and
one notion of a trial's identity; split apart, each half would need the other's internals.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import itertools
import json
import logging
import math
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

from textrnn.errors import ParamsError
from textrnn.tuning import space as spaces
from textrnn.tuning.storage import claim_lock, open_storage

log = logging.getLogger(__name__)

WORKER_ATTR = "worker"        # user attr: "host:pid" of the process running the trial
RETRY_ATTR = "retry_of"       # user attr: number of the dead trial this one re-runs
DEFAULTS_ATTR = "defaults"    # user attr: True on the trial that runs the params.yaml values
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def grid_points(grid: Mapping[str, Sequence[Any]], seed: int) -> list[dict[str, Any]]:
    """Every point of ``grid``, in the order Optuna's ``GridSampler(grid, seed=seed)`` numbers them.

    Returns a list whose item ``i`` holds the params that sampler gives a trial whose ``grid_id``
    system attribute is ``i``: the product of the values with the names in sorted order (the last
    name varying fastest), shuffled once by ``numpy.random.RandomState(seed)``. Optuna keeps that
    list private; tests/unit/test_tuning.py checks this order against the params it assigns.
    """
    names = sorted(grid)
    points = [dict(zip(names, values, strict=True))
              for values in itertools.product(*(grid[name] for name in names))]
    np.random.RandomState(seed).shuffle(points)
    return points


class _GridSampler(optuna.samplers.GridSampler):
    """Optuna's GridSampler that also says which params each ``grid_id`` stands for: ``points``
    (see :func:`grid_points`)."""

    def __init__(self, grid: Mapping[str, Sequence[Any]], *, seed: int) -> None:
        super().__init__(grid, seed=seed)
        self.points = grid_points(grid, seed)

    # Optuna's GridSampler calls study.stop() once the grid is exhausted, which only works inside
    # study.optimize; the worker loop below uses ask/tell and already caps the budget at the
    # grid's size, so the stop is not needed.
    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        pass


@dataclass(frozen=True)
class StudySpec:
    """Everything that defines one study; ``name`` changes when any of it changes."""

    task: str
    model: str
    direction: str                     # "maximize" | "minimize"
    space: Mapping[str, spaces.Dimension]
    sampler: str                       # grid | random | tpe
    pruner: str                        # none | median | hyperband
    n_trials: int
    timeout_s: float                   # 0: no cap (per worker run)
    warmup_epochs: int
    max_epochs: int                    # longest a trial may train (hyperband's max resource)
    seed: int
    defaults: Mapping[str, Any]        # params.yaml values of the searched names
    context: Mapping[str, Any] = field(default_factory=dict)  # anything else the score depends on

    @property
    def budget(self) -> int:
        if self.sampler == "grid":
            return min(self.n_trials, spaces.grid_size(self.space))
        return self.n_trials

    @property
    def name(self) -> str:
        # n_trials and timeout_s are left out: raising the budget continues the same study.
        identity = {
            "space": spaces.describe(self.space), "sampler": self.sampler, "pruner": self.pruner,
            "warmup_epochs": self.warmup_epochs, "max_epochs": self.max_epochs, "seed": self.seed,
            "direction": self.direction, "defaults": dict(self.defaults),
            "context": dict(self.context),
        }
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode())
        return f"{self.task}-{self.model}-{digest.hexdigest()[:12]}"


def make_sampler(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler:
    if spec.sampler == "grid":
        return _GridSampler(spaces.grid(spec.space), seed=spec.seed)  # one fixed grid order
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.sampler == "tpe":
        # Small budgets: start modelling after a third of the trials (Optuna's default waits 10).
        startup = max(2, min(10, spec.n_trials // 3))
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)
    raise ParamsError(f"unknown sampler {spec.sampler!r} (known: grid, random, tpe)")


def make_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    """Steps are epochs counted from 1; nothing is pruned before ``warmup_epochs``."""
    if spec.pruner == "none":
        return optuna.pruners.NopPruner()
    if spec.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=spec.warmup_epochs)
    if spec.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=spec.warmup_epochs, max_resource=max(spec.max_epochs, spec.warmup_epochs),
            reduction_factor=3,
        )
    raise ParamsError(f"unknown pruner {spec.pruner!r} (known: none, median, hyperband)")


def make_storage(url: str, *, heartbeat_s: int) -> optuna.storages.RDBStorage:
    """The study store at ``url``, re-queueing trials whose heartbeat stopped."""
    return open_storage(url, heartbeat_s=heartbeat_s, on_stale=requeue)


# ----------------------------------------------------------------------------- trial bookkeeping


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _params_of(study: optuna.Study, trial: FrozenTrial) -> dict[str, Any]:
    """The params a dead trial ran with, or was about to run with; {} when unknown.

    A worker killed between creating a trial and suggesting its params leaves ``trial.params``
    empty (or partial): the enqueued values, or the trial's grid point, still say what it was.
    """
    grid_id = trial.system_attrs.get("grid_id")
    sampler = study.sampler
    if isinstance(sampler, _GridSampler) and grid_id is not None:
        # the grid sampler refuses a partial enqueue, and counts a failed point as visited
        return dict(sampler.points[grid_id])
    return {**dict(trial.system_attrs.get("fixed_params") or {}), **trial.params}


def requeue(study: optuna.Study, trial: FrozenTrial) -> None:
    """Re-queue a dead trial with the same params (heartbeat callback, and local dead workers)."""
    params = _params_of(study, trial)
    if not params:
        log.info("trial %d lost its worker before it had params; the sampler picks anew",
                 trial.number)
        return
    attrs = {RETRY_ATTR: trial.number}
    if trial.user_attrs.get(DEFAULTS_ATTR):
        attrs[DEFAULTS_ATTR] = True
    study.enqueue_trial(params, user_attrs=attrs)
    log.info("trial %d lost its worker; re-queued with the same params", trial.number)


def _trial_id(storage: Any, study: optuna.Study, number: int) -> int:
    """The storage's id of trial ``number`` of ``study`` (what heartbeats and states key on)."""
    return storage.get_trial_id_from_study_id_trial_number(
        storage.get_study_id_from_name(study.study_name), number)


def _process_alive(pid: int) -> bool:
    """Whether ``pid`` runs. A zombie (killed, not yet reaped) is dead: in a container whose
    first process reaps nothing, a killed worker stays a zombie for good and ``kill 0`` works."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (macOS), or it just went
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def fail_dead_local_trials(study: optuna.Study, storage: Any) -> int:
    """Fail and re-queue RUNNING trials whose worker was a process of this machine that is gone."""
    host = socket.gethostname()
    failed = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = str(trial.user_attrs.get(WORKER_ATTR, ""))
        owner_host, _, pid = owner.rpartition(":")
        if owner_host != host or not pid.isdigit() or _process_alive(int(pid)):
            continue
        failed += _fail_and_requeue(study, storage, trial)
    return failed


def _fail_and_requeue(study: optuna.Study, storage: Any, trial: FrozenTrial) -> bool:
    """Fail a RUNNING trial whose worker is gone and re-queue its params; False if it finished."""
    trial_id = _trial_id(storage, study, trial.number)
    try:
        if storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
            requeue(study, trial)
            return True
    except optuna.exceptions.UpdateFinishedTrialError:
        pass
    return False


def fail_stale_trials(study: optuna.Study, storage: Any) -> None:
    """Fail (and re-queue) trials whose heartbeat stopped, or that never got one.

    Optuna only looks at trials with a heartbeat. A worker killed between taking a trial and
    its first beat leaves one without: ``_claim`` beats before it writes the worker's name, so
    a RUNNING trial with no name that is older than the grace period has no worker.
    """
    with warnings.catch_warnings():  # heartbeats are 'experimental' since Optuna 2.9
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    grace = storage.grace_period or 2 * storage.heartbeat_interval
    now = datetime.datetime.now()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        started = trial.datetime_start
        if WORKER_ATTR in trial.user_attrs or started is None:
            continue
        if (now - started).total_seconds() > grace:
            _fail_and_requeue(study, storage, trial)


def counted_trials(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """Trials that use the budget: all except dead ones that were re-queued (their retry counts)."""
    retried = {t.user_attrs[RETRY_ATTR] for t in trials if RETRY_ATTR in t.user_attrs}
    return [t for t in trials if t.number not in retried]


def finished(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in counted_trials(trials) if t.state in COUNTED]


class _Heartbeat:
    """Record the trial's heartbeat every ``interval`` seconds while it runs (ask/tell mode)."""

    def __init__(self, storage: Any, trial_id: int, interval: float):
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, args=(storage, trial_id, interval), daemon=True
        )

    def _beat(self, storage: Any, trial_id: int, interval: float) -> None:
        while True:
            with contextlib.suppress(Exception):  # a missed beat is retried on the next tick
                storage.record_heartbeat(trial_id)
            if self._stop.wait(interval):
                return

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# ----------------------------------------------------------------------------- the worker loop

Objective = Callable[[Trial, dict[str, Any]], float]
"""``objective(trial, params)``: train with ``params``, report each epoch, return the score."""


def open_study(spec: StudySpec, storage: optuna.storages.RDBStorage, *, seed: int) -> optuna.Study:
    return optuna.create_study(
        study_name=spec.name, storage=storage, direction=spec.direction, load_if_exists=True,
        sampler=make_sampler(spec, seed), pruner=make_pruner(spec),
    )


def _claim(spec: StudySpec, storage: Any, lock: Callable, *, enqueue_defaults: bool
           ) -> tuple[optuna.Study, Trial] | None:
    """Under the lock: decide whether the budget has room, and take the next trial."""
    with lock():
        study = open_study(spec, storage, seed=spec.seed)
        fail_dead_local_trials(study, storage)
        fail_stale_trials(study, storage)  # other machines' dead workers (heartbeat)
        trials = study.get_trials(deepcopy=False)
        if enqueue_defaults and not trials and spec.sampler != "grid":
            if spaces.contains(spec.space, spec.defaults):
                # The params.yaml values run first, so the best trial is never worse than them.
                study.enqueue_trial(dict(spec.defaults), user_attrs={DEFAULTS_ATTR: True})
            else:
                log.info("the params.yaml values lie outside the search space: not run as a trial")
            trials = study.get_trials(deepcopy=False)
        waiting = any(t.state == TrialState.WAITING for t in trials)
        if not waiting and len(counted_trials(trials)) >= spec.budget:
            return None
        # Seeded by the history length: trial n's params depend on the history, not on restarts.
        study = open_study(spec, storage, seed=spec.seed + len(trials))
        with warnings.catch_warnings():  # Optuna assumes heartbeats come with study.optimize;
            warnings.filterwarnings("ignore", message="Heartbeat of storage")  # _Heartbeat beats
            trial = study.ask()
        # First a heartbeat, then the worker's name: a trial killed in between is found dead
        # by its heartbeat; one killed before either, by having neither (fail_stale_trials).
        storage.record_heartbeat(_trial_id(storage, study, trial.number))
        trial.set_user_attr(WORKER_ATTR, worker_id())
        return study, trial


def run_trials(
    spec: StudySpec,
    objective: Objective,
    *,
    storage_url: str,
    heartbeat_s: int,
    trial_context: Callable[[Trial], contextlib.AbstractContextManager] | None = None,
    progress: bool = True,
    enqueue_defaults: bool = True,
    wait_for_others: bool = True,
) -> optuna.Study:
    """Run trials of ``spec``'s study until its budget is used (or ``timeout_s`` has passed).

    Joins the study if it exists (resume, or a second worker). ``trial_context(trial)`` wraps
    each trial (an MLflow child run). With ``wait_for_others`` it returns only when no trial of
    another worker is still running (and runs any they leave re-queued), so the study it returns
    is final.
    """
    from tqdm import tqdm

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per reopen is noise here
    storage = make_storage(storage_url, heartbeat_s=heartbeat_s)
    started = time.monotonic()
    with claim_lock(storage_url, spec.name) as lock:
        study = open_study(spec, storage, seed=spec.seed)
        done = len(finished(study.get_trials(deepcopy=False)))
        if done:
            log.info("study %s: resuming with %d of %d trials done", spec.name, done, spec.budget)
        bar = tqdm(total=spec.budget, initial=min(done, spec.budget), desc=f"tune {spec.model}",
                   unit="trial", disable=not progress, dynamic_ncols=True)
        _show_best(bar, study)
        try:
            while True:
                if spec.timeout_s and time.monotonic() - started >= spec.timeout_s:
                    log.info("tune %s: wall-time cap of %gs reached", spec.model, spec.timeout_s)
                    break
                claimed = _claim(spec, storage, lock, enqueue_defaults=enqueue_defaults)
                if claimed is not None:
                    study, trial = claimed
                    _run_one(spec, study, trial, objective, storage, heartbeat_s, trial_context)
                elif not (wait_for_others and _others_running(study, storage, lock)):
                    break
                else:
                    time.sleep(min(5.0, heartbeat_s))
                bar.n = min(len(finished(study.get_trials(deepcopy=False))), spec.budget)
                _show_best(bar, study)
        finally:
            bar.close()
    return study


def _others_running(study: optuna.Study, storage: Any, lock: Callable) -> bool:
    with lock():
        fail_dead_local_trials(study, storage)
        fail_stale_trials(study, storage)
        return bool(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def _run_one(spec: StudySpec, study: optuna.Study, trial: Trial, objective: Objective,
             storage: Any, heartbeat_s: int, trial_context: Callable | None) -> FrozenTrial:
    trial_id = _trial_id(storage, study, trial.number)
    context = trial_context(trial) if trial_context else contextlib.nullcontext()
    with _Heartbeat(storage, trial_id, heartbeat_s), context:
        try:
            value = objective(trial, spaces.suggest(trial, spec.space))
        except optuna.TrialPruned:
            return study.tell(trial, state=TrialState.PRUNED)
        except BaseException:
            # Interrupted or crashed: the trial failed, and a rerun tries the same params again.
            requeue(study, study.tell(trial, state=TrialState.FAIL))
            raise
        if value is None or not math.isfinite(value):
            log.warning("trial %d scored %r: recorded as failed", trial.number, value)
            return study.tell(trial, state=TrialState.FAIL)
        return study.tell(trial, value)


def _show_best(bar: Any, study: optuna.Study) -> None:
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if complete:
        pick = max if study.direction == optuna.study.StudyDirection.MAXIMIZE else min
        bar.set_postfix(best=f"{pick(t.value for t in complete):.4f}")
    bar.refresh()
