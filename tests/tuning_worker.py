"""A tune worker on a cheap objective, run as a separate process by the tuning tests.

``python tests/tuning_worker.py STORAGE_URL LOG_FILE [--sampler tpe] [--n-trials 12]
[--kill-at N --kill-marker PATH] [--sleep 0.2] [--no-wait]``

Each evaluated trial appends one JSON line to LOG_FILE (pid, trial number, params, value).
``--kill-at N`` kills this process with SIGKILL in the middle of trial N, once (the marker file
records that it happened), as a power cut or an OOM kill would.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from pathlib import Path

import optuna

from textrnn.tuning.space import parse_dimension
from textrnn.tuning.study import StudySpec, run_trials

SPACE = {
    "x": parse_dimension({"low": -4.0, "high": 4.0}),
    "units": parse_dimension([16, 32, 64]),
    "optimizer": parse_dimension(["adam", "rmsprop"]),
}
GRID = {"units": parse_dimension([16, 32, 64]), "optimizer": parse_dimension(["adam", "rmsprop"]),
        "dropout": parse_dimension([0.1, 0.3])}


def spec(sampler: str, n_trials: int, pruner: str = "median") -> StudySpec:
    space = GRID if sampler == "grid" else SPACE
    defaults = {"units": 32, "optimizer": "adam", "x": 0.0, "dropout": 0.1}
    return StudySpec(
        task="test", model="toy", direction="minimize", space=space, sampler=sampler,
        pruner=pruner, n_trials=n_trials, timeout_s=0, warmup_epochs=1, max_epochs=3, seed=7,
        defaults={k: defaults[k] for k in space},
    )


def score(params: dict) -> float:
    return ((params.get("x", 0.0) - 1.0) ** 2 + {16: 0.5, 32: 0.0, 64: 0.25}[params["units"]]
            + (0.1 if params["optimizer"] == "rmsprop" else 0.0) + params.get("dropout", 0.0))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("storage")
    parser.add_argument("log")
    parser.add_argument("--sampler", default="tpe")
    parser.add_argument("--n-trials", type=int, default=12)
    parser.add_argument("--kill-at", type=int, default=-1)
    parser.add_argument("--kill-marker", default="")
    parser.add_argument("--sleep", type=float, default=0.1)
    parser.add_argument("--no-wait", action="store_true")
    args = parser.parse_args()

    def objective(trial: optuna.Trial, params: dict) -> float:
        value = score(params)
        for epoch in range(3):
            time.sleep(args.sleep)
            if trial.number == args.kill_at and not Path(args.kill_marker).exists():
                Path(args.kill_marker).write_text("killed\n")
                os.kill(os.getpid(), signal.SIGKILL)
            trial.report(value + (2 - epoch), epoch + 1)
        with open(args.log, "a", encoding="utf-8") as handle:  # noqa: PTH123
            handle.write(json.dumps({"pid": os.getpid(), "number": trial.number,
                                     "params": params, "value": value}) + "\n")
        return value

    run_trials(spec(args.sampler, args.n_trials), objective, storage_url=args.storage,
               heartbeat_s=1, progress=False, wait_for_others=not args.no_wait)


if __name__ == "__main__":
    main()
