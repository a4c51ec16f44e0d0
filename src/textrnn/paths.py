"""Every path that one stage hands another, named once (dvc.yaml declares the same paths).

::

    models/specs/<task>/<name>/model.json   resolve  -> tune, train   (the model's full params)
    models/specs/<task>/<name>/tune.json    resolve  -> tune          (how it is searched)
    models/<task>/<name>/best_params.json   tune     -> train
    models/<task>/<name>/model/             train    -> ensemble, evaluate, service, registry
    models/<task>/<name>/train_state/       train    -> train (a killed run resumes)
    metrics/trained/<task>/<name>.json      train    -> ensemble, evaluate (which model, digest)
    plots/<task>/history/<name>.csv         train    -> evaluate (per-epoch curves)
    models/sentiment/ensemble/model/        ensemble -> evaluate, service
    models/<task>/champion.json             evaluate -> service, registry
"""

from __future__ import annotations

import os
from pathlib import Path

MODELS = Path("models")
SPECS = MODELS / "specs"
ENSEMBLE = "ensemble"          # the ensemble stage's model name (reserved: no model is so named)

SENTIMENT_SPLITS = Path("data/split/sentiment")
CHARLM_SPLITS = Path("data/split/charlm")


EXPERIMENT_COPIES = (".dvc", "tmp", "exps")   # where DVC runs queued and --temp experiments


def project_dir(start: str | os.PathLike | None = None) -> Path:
    """The project folder a stage belongs to (absolute): the working directory, except in the
    copy DVC makes for a queued or ``--temp`` experiment (``<project>/.dvc/tmp/exps/<tmp>/...``),
    where it is the project that queued it. Local stores (MLflow's ``mlflow.db``, the tuning
    studies) live there, so that experiments run in parallel keep their runs and studies."""
    here = Path(start if start is not None else Path.cwd()).resolve()
    parts = here.parts
    size = len(EXPERIMENT_COPIES)
    for index in range(len(parts) - size, 0, -1):
        if parts[index:index + size] == EXPERIMENT_COPIES and len(parts) > index + size:
            return Path(*parts[:index], *parts[index + size + 1:])
    return here


POSTGRES_PREFIXES = ("postgresql://", "postgresql+psycopg://", "postgresql+psycopg2://")


def store_url(uri: str) -> str:
    """The SQLAlchemy URL of a store named in params.yaml (MLflow's ``tracking.uri``, the tuning
    studies' ``tune.storage``); any other URI (a tracking server) as it is.

    PostgreSQL: the pinned driver, psycopg 3, named (``postgresql+psycopg://``), for
    ``postgresql://`` and for ``postgresql+psycopg2://`` too (psycopg2, pinned before, is no
    longer installed). SQLite: a relative file under :func:`project_dir`, so that a queued DVC
    experiment uses the project's store, not one in its throw-away copy.
    """
    if uri.startswith(POSTGRES_PREFIXES):
        return "postgresql+psycopg://" + uri.split("://", 1)[1]
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return f"sqlite:///{project_dir() / uri.removeprefix('sqlite:///')}"
    return uri


def sqlite_file(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` store (a relative one under :func:`project_dir`), else None."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(store_url(uri).removeprefix("sqlite:///"))


def lock_file(path: Path) -> Path:
    """The lock file beside the SQLite file ``path`` (first writes, trial claims)."""
    return path.with_name(f"{path.name}.lock")


def spec_dir(task: str) -> Path:
    return SPECS / task


def spec_path(task: str, name: str) -> Path:
    return SPECS / task / name / "model.json"


def tune_spec_path(task: str, name: str) -> Path:
    return SPECS / task / name / "tune.json"


def model_root(task: str, name: str, models_dir: Path = MODELS) -> Path:
    return Path(models_dir) / task / name


def model_dir(task: str, name: str, models_dir: Path = MODELS) -> Path:
    """The saved model: what ensemble, evaluate, the service and the registry load."""
    return model_root(task, name, models_dir) / "model"


def train_state_dir(task: str, name: str) -> Path:
    return model_root(task, name) / "train_state"


def best_params_path(task: str, name: str) -> Path:
    """Where tune_<task>@<name> writes best_params.json and train_<task>@<name> reads it."""
    return model_root(task, name) / "best_params.json"


def champion_path(task: str, models_dir: Path = MODELS) -> Path:
    return Path(models_dir) / task / "champion.json"


def trained_dir(task: str) -> Path:
    """One record per trained model: the folder ensemble and evaluate depend on."""
    return Path("metrics/trained") / task


def trained_record_path(task: str, name: str) -> Path:
    return trained_dir(task) / f"{name}.json"


def history_dir(task: str) -> Path:
    return Path("plots") / task / "history"


def history_path(task: str, name: str) -> Path:
    return history_dir(task) / f"{name}.csv"


def curves_path(task: str) -> Path:
    """Every model's per-epoch history in one long table (column ``model``), for DVC plots."""
    return Path("plots") / task / "curves.csv"


def tune_plots_dir(task: str, name: str) -> Path:
    return Path("plots/tune") / task / name
