"""A Keras callback that reports each epoch's validation score to an Optuna trial.

(optuna-integration's KerasPruningCallback does the same; this keeps the dependency out.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from textrnn.tuning.study import DEFAULTS_ATTR


class TrialReporter(keras.callbacks.Callback):
    """After every epoch: ``trial.report(score, step)``; stop training if the pruner says so.

    Steps count epochs from 1, plus ``step_offset`` (k-fold: fold index x epochs per fold), so
    trials are compared epoch for epoch. ``transform`` turns the logged value into the score
    (``math.exp`` turns a mean cross-entropy into a perplexity). After ``fit`` returns, the caller
    checks :attr:`pruned` and raises ``optuna.TrialPruned``: stopping through ``stop_training``
    lets the other callbacks finish cleanly.
    """

    def __init__(self, trial: Any, monitor: str, *, step_offset: int = 0,
                 transform: Callable[[float], float] | None = None):
        super().__init__()
        self.trial, self.monitor, self.step_offset = trial, monitor, step_offset
        self.transform = transform
        self.pruned = False

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.monitor not in logs:
            raise KeyError(f"{self.monitor!r} is not logged; logged: {', '.join(sorted(logs))}")
        value = float(logs[self.monitor])
        if self.transform is not None:
            value = self.transform(value)
        self.trial.report(value, self.step_offset + epoch + 1)
        # The trial of the params.yaml values is the baseline: it always runs to the end.
        if not self.trial.user_attrs.get(DEFAULTS_ATTR) and self.trial.should_prune():
            self.pruned = True
            self.model.stop_training = True
