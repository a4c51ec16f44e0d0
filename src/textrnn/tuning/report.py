"""What a finished study leaves behind: the best params for train, the trials table, the plots."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import TrialState

from textrnn.io import atomic_path, write_json
from textrnn.tuning.study import DEFAULTS_ATTR, RETRY_ATTR, WORKER_ATTR, counted_trials

log = logging.getLogger(__name__)

TRIALS_CSV = "trials.csv"                    # one row per trial
INTERMEDIATE_CSV = "intermediate.csv"        # one row per (trial, epoch)
IMPORTANCES_CSV = "importances.csv"          # one row per searched hyperparameter
PLOT_FILES = ("optimization_history.png", "param_importances.png", "intermediate_values.png")


def best_params_doc(study: optuna.Study | None, *, metric: str) -> dict[str, Any]:
    """The contract of best_params.json: ``{"tuned": false, "params": {}}`` without a study."""
    if study is None:
        return {"tuned": False, "params": {}}
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if not complete:
        raise RuntimeError(f"study {study.study_name} has no complete trial to take params from")
    best = study.best_trial  # ties go to the earliest trial: the params.yaml values run first
    return {
        "tuned": True,
        "params": dict(sorted(best.params.items())),
        "value": best.value,
        "metric": metric,
        "direction": study.direction.name.lower(),
        "trial": best.number,
        "is_default": bool(best.user_attrs.get(DEFAULTS_ATTR, False)),
        "n_trials": len(counted_trials(study.get_trials(deepcopy=False))),
        "study": study.study_name,
    }


def trials_table(study: optuna.Study | None) -> pd.DataFrame:
    """One row per trial: number, state, value, best so far, epochs, seconds, worker, params."""
    columns = ["number", "state", "value", "best_value", "epochs", "duration_s", "defaults",
               "retry_of", "worker"]
    if study is None:
        return pd.DataFrame(columns=columns)
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    rows, best = [], math.nan
    for trial in study.get_trials(deepcopy=False):
        if trial.state == TrialState.COMPLETE:
            if math.isnan(best) or (trial.value > best if maximize else trial.value < best):
                best = trial.value
        duration = trial.duration.total_seconds() if trial.duration else math.nan
        rows.append({
            "number": trial.number, "state": trial.state.name.lower(),
            "value": trial.value if trial.value is not None else math.nan, "best_value": best,
            "epochs": max(trial.intermediate_values, default=0), "duration_s": round(duration, 2),
            "defaults": bool(trial.user_attrs.get(DEFAULTS_ATTR, False)),
            "retry_of": trial.user_attrs.get(RETRY_ATTR, ""),
            "worker": trial.user_attrs.get(WORKER_ATTR, ""),
            **{f"params_{k}": v for k, v in sorted(trial.params.items())},
        })
    return pd.DataFrame(rows, columns=list(dict.fromkeys(columns + [k for r in rows for k in r])))


def intermediate_table(study: optuna.Study | None) -> pd.DataFrame:
    rows = [
        {"trial": t.number, "state": t.state.name.lower(), "epoch": step, "value": value}
        for t in (study.get_trials(deepcopy=False) if study else [])
        for step, value in sorted(t.intermediate_values.items())
    ]
    return pd.DataFrame(rows, columns=["trial", "state", "epoch", "value"])


def importances(study: optuna.Study | None) -> dict[str, float]:
    """fANOVA importances of the searched params ({} with too few complete trials to tell)."""
    if study is None:
        return {}
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if len(complete) < 2:
        return {}
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        return dict(optuna.importance.get_param_importances(study, evaluator=evaluator))
    except (RuntimeError, ValueError) as exc:  # e.g. every complete trial has the same params
        log.info("no parameter importances: %s", exc)
        return {}


def write_reports(study: optuna.Study | None, plots_dir: Path, *, metric: str,
                  title: str) -> None:
    """The tables (CSV plot data) and three PNG plots; placeholders when tuning is off."""
    plots_dir = Path(plots_dir)
    trials, steps = trials_table(study), intermediate_table(study)
    weights = importances(study)
    imp = pd.DataFrame({"param": list(weights), "importance": list(weights.values())})
    for frame, name in ((trials, TRIALS_CSV), (steps, INTERMEDIATE_CSV), (imp, IMPORTANCES_CSV)):
        with atomic_path(plots_dir / name) as tmp:
            frame.to_csv(tmp, index=False)
    _plot(plots_dir, trials, steps, weights, metric=metric, title=title, tuned=study is not None)


def _plot(plots_dir: Path, trials: pd.DataFrame, steps: pd.DataFrame, weights: Mapping[str, float],
          *, metric: str, title: str, tuned: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"complete": "tab:blue", "pruned": "tab:orange", "fail": "tab:red"}
    figures = {}

    fig, ax = plt.subplots(figsize=(6, 4))
    done = trials[trials["state"] == "complete"]
    ax.scatter(done["number"], done["value"], s=18, label=f"{metric} (complete trial)")
    ax.step(trials["number"], trials["best_value"], where="post", color="tab:green",
            label="best so far")
    ax.set(xlabel="trial", ylabel=metric, title=f"{title}: optimisation history")
    figures["optimization_history.png"] = fig

    fig, ax = plt.subplots(figsize=(6, 4))
    if weights:
        names = list(weights)[::-1]
        ax.barh(names, [weights[n] for n in names])
    ax.set(xlabel="importance (fANOVA)", title=f"{title}: parameter importances")
    figures["param_importances.png"] = fig

    fig, ax = plt.subplots(figsize=(6, 4))
    for (_, state), rows in steps.groupby(["trial", "state"], sort=True):
        ax.plot(rows["epoch"], rows["value"], marker=".", color=colors.get(state, "gray"),
                alpha=0.8, label=state)
    handles = {h.get_label(): h for h in ax.get_lines()}
    if handles:
        ax.legend(handles.values(), handles.keys())
    ax.set(xlabel="epoch", ylabel=metric, title=f"{title}: intermediate values")
    figures["intermediate_values.png"] = fig

    for name, fig in figures.items():
        ax = fig.axes[0]
        if not tuned:
            ax.text(0.5, 0.5, "tuning is off for this model", ha="center", va="center",
                    transform=ax.transAxes)
        elif name == "optimization_history.png":
            ax.legend(loc="best")
        elif name == "param_importances.png" and not weights:
            ax.text(0.5, 0.5, "too few complete trials to tell", ha="center", va="center",
                    transform=ax.transAxes)
        fig.tight_layout()
        with atomic_path(plots_dir / name) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
        plt.close(fig)


def write_best_params(path: Path, doc: Mapping[str, Any]) -> None:
    write_json(path, dict(doc))
