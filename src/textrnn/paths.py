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

from pathlib import Path

MODELS = Path("models")
SPECS = MODELS / "specs"
ENSEMBLE = "ensemble"          # the ensemble stage's model name (reserved: no model is so named)

SENTIMENT_SPLITS = Path("data/split/sentiment")
CHARLM_SPLITS = Path("data/split/charlm")


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
