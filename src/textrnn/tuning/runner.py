"""The tune stage of one model, shared by both tasks: study, MLflow runs, best params, reports.

The stage module names the paths (as dvc.yaml declares them) and builds the objective; this
module does the rest, the same way for every task and model.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textrnn import tracking
from textrnn.config import ModelTuneParams, TrackingParams
from textrnn.errors import ParamsError
from textrnn.tuning import report
from textrnn.tuning import space as spaces
from textrnn.tuning.study import StudySpec, run_trials

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TuneJob:
    task: str
    model: str
    settings: ModelTuneParams | None   # None: the model has no tune entry (not tuned)
    base: Any                          # the model's train params from params.yaml
    metric: str                        # e.g. val_accuracy, val_perplexity
    direction: str                     # maximize | minimize
    seed: int
    storage: str
    heartbeat_s: int
    context: Mapping[str, Any]         # what else the score depends on (data hash, vectorizer...)
    dataset: str | None = None         # names the MLflow runs (not part of the study's identity)

    @property
    def key(self) -> str:
        return f"tune.{self.task}.models.{self.model}"

    @property
    def enabled(self) -> bool:
        return self.settings is not None and self.settings.enabled


def worker_args(task: str, argv: list[str] | None = None) -> argparse.Namespace:
    """``<model> [--worker]`` from the command line of ``python -m stages.tune_<task>``."""
    parser = argparse.ArgumentParser(
        prog=f"python -m stages.tune_{task}",
        description=f"Tune one {task} model (a DVC stage), or join its study as a worker.",
    )
    parser.add_argument("model", help=f"a model of train.{task}.models")
    parser.add_argument(
        "--worker", action="store_true",
        help="join the study in tune.storage and run trials until its budget is used; write "
             "no outputs (the DVC stage on the first machine writes them)",
    )
    return parser.parse_args(argv)


def searched_values(settings: ModelTuneParams | None, name: str) -> list[float]:
    """The values (choices, or a range's upper bound) the space gives ``name``; [] if unsearched."""
    if settings is None or not settings.enabled or name not in settings.space:
        return []
    dim = settings.space[name]
    return list(dim.choices) if isinstance(dim, spaces.Categorical) else [dim.high]


def checked_space(job: TuneJob) -> dict[str, spaces.Dimension]:
    """The job's space checked against the model's params, errors as ParamsError."""
    settings = job.settings
    try:
        space = spaces.check_space(settings.space, job.base, key=f"{job.key}.space",
                                   fixed=settings.fixed)
        if settings.sampler == "grid":
            spaces.grid(space)
        return space
    except ValueError as exc:
        raise ParamsError(f"params.yaml: {exc}") from None


def study_spec(job: TuneJob, *, max_epochs: int) -> StudySpec:
    settings = job.settings
    space = checked_space(job)
    return StudySpec(
        task=job.task, model=job.model, direction=job.direction, space=space,
        sampler=settings.sampler, pruner=settings.pruner, n_trials=settings.n_trials,
        timeout_s=settings.timeout_s, warmup_epochs=settings.warmup_epochs,
        max_epochs=max_epochs, seed=job.seed,
        defaults={name: getattr(job.base, name) for name in space},
        context={"base": job.base.model_dump(), "fixed": dict(settings.fixed), **job.context},
    )


@contextlib.contextmanager
def _mlflow_trial(trial: Any, *, stage: str, metric: str) -> Iterator[None]:
    """One nested MLflow run per trial: its params, value and state; its per-epoch rows reach
    the run as each epoch ends (:func:`textrnn.training.fit` logs to the active run)."""
    import mlflow

    with tracking.start_run(run_name=f"trial {trial.number}", stage=stage, nested=True,
                            tags={"optuna_trial": str(trial.number)}):
        try:
            yield
        finally:
            frozen = next(t for t in trial.study.get_trials(deepcopy=False)
                          if t.number == trial.number)
            mlflow.log_params(frozen.params)   # per-epoch curves went live (training.fit)
            if frozen.value is not None:
                mlflow.log_metric(f"trial_{metric}", frozen.value)
            mlflow.set_tag("state", frozen.state.name.lower())


def tune(job: TuneJob, objective: Any, *, max_epochs: int, tracking_params: TrackingParams,
         best_params_path: Path | None, plots_dir: Path | None, progress: bool = True) -> dict:
    """Run (or join) the study of ``job`` and, unless a worker (paths None), write its outputs.

    Returns the best_params.json document.
    """
    stage = f"tune_{job.task}@{job.model}"
    if not job.enabled:
        log.info("%s: tuning is off; train uses the params.yaml values", stage)
        doc = report.best_params_doc(None, metric=job.metric)
        _write(doc, None, job, best_params_path, plots_dir)
        return doc
    spec = study_spec(job, max_epochs=max_epochs)
    tracking.configure(tracking_params.uri, tracking_params.experiment)
    worker = best_params_path is None
    run_name = f"tune {job.task}/{job.model}" + (" (worker)" if worker else "")
    logged = {"study": spec.name, "sampler": spec.sampler, "pruner": spec.pruner,
              "n_trials": spec.n_trials, "timeout_s": spec.timeout_s,
              "space": spaces.describe(spec.space), "fixed": dict(job.settings.fixed)}
    with tracking.start_run(run_name=run_name, stage=stage, params=logged, dataset=job.dataset,
                            tags={"optuna_study": spec.name}):
        import mlflow

        study = run_trials(
            spec, objective, storage_url=job.storage, heartbeat_s=job.heartbeat_s,
            trial_context=lambda trial: _mlflow_trial(trial, stage=stage, metric=job.metric),
            progress=progress, wait_for_others=not worker,
        )
        if worker:
            return {}
        doc = report.best_params_doc(study, metric=job.metric)
        mlflow.log_metric(f"best_{job.metric}", doc["value"])
        mlflow.log_metric("n_trials", doc["n_trials"])
        _write(doc, study, job, best_params_path, plots_dir)
        mlflow.log_artifacts(str(plots_dir), artifact_path="tune")
    log.info("%s: best %s %.4f (trial %d of %d) with %s", stage, job.metric, doc["value"],
             doc["trial"], doc["n_trials"], doc["params"])
    return doc


def _write(doc: dict, study: Any, job: TuneJob, best_params_path: Path | None,
           plots_dir: Path | None) -> None:
    if plots_dir is not None:
        report.write_reports(study, plots_dir, metric=job.metric,
                             title=f"{job.task} {job.model}")
    if best_params_path is not None:
        report.write_best_params(best_params_path, doc)
