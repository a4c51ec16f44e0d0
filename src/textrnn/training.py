"""Fit any Keras model with the callbacks every run needs; knows nothing about a particular model.

Shared by the sentiment and the charlm stages and by tuning:

- :func:`compile_model` builds the optimizer named in :class:`~textrnn.config.FitParams`;
  ``lazy_adam`` (:class:`LazyAdam`) updates only the embedding rows a batch uses.
- :func:`fit` trains with early stopping (best weights restored), learning-rate reduction on
  plateau, a checkpoint of the best weights and backup-and-restore in ``work_dir``: a run killed
  mid-way and started again with the same ``work_dir`` resumes after its last completed epoch,
  with its earlier epochs kept in the history and in the early-stopping state. Each epoch's
  row reaches the active MLflow run (train, a tuning trial) as the epoch ends, so a running
  experiment can be watched in the MLflow UI.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import keras

from textrnn.config import FitParams
from textrnn.errors import UserError
from textrnn.io import write_json

log = logging.getLogger(__name__)

HISTORY_FILE = "history.json"      # per-epoch rows, rewritten after every epoch
BEST_WEIGHTS_FILE = "best.weights.h5"
BACKUP_DIR = "backup"


@keras.saving.register_keras_serializable(package="textrnn")
class LazyAdam(keras.optimizers.Adam):
    """Adam that updates only the rows of an embedding its batch touched (row-sparse gradients).

    Keras' Adam turns an embedding's row-sparse gradient into a dense one and updates every row
    of the table, its moments included, at every step: with a 30k-word vocabulary that is most
    of a short batch's cost. Here a row-sparse gradient (a ``tf.IndexedSlices``, what a lookup
    gives) updates only its rows: their moments decay and take the gradient, and only they
    move. A row absent from a batch keeps its moments and does not coast on its momentum, as
    in TF Addons' LazyAdam and PyTorch's SparseAdam. Dense gradients (every other weight) get
    Keras' Adam unchanged; on the first step the two are identical.
    """

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        import tensorflow as tf

        if not isinstance(gradient, tf.IndexedSlices):
            super().update_step(gradient, variable, learning_rate)
            return
        dtype = variable.dtype
        step = keras.ops.cast(self.iterations + 1, dtype)
        beta_1 = keras.ops.cast(self.beta_1, dtype)
        beta_2 = keras.ops.cast(self.beta_2, dtype)
        alpha = (keras.ops.cast(learning_rate, dtype) * keras.ops.sqrt(1 - beta_2 ** step)
                 / (1 - beta_1 ** step))
        # a row looked up twice in the batch appears twice: sum its parts first
        rows, position = tf.unique(gradient.indices)
        grad = tf.math.unsorted_segment_sum(tf.cast(gradient.values, dtype), position,
                                            tf.shape(rows)[0])
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        m_rows = tf.gather(m.value, rows) * beta_1 + grad * (1 - beta_1)
        v_rows = tf.gather(v.value, rows) * beta_2 + tf.square(grad) * (1 - beta_2)
        self.assign(m, tf.IndexedSlices(m_rows, rows))
        self.assign(v, tf.IndexedSlices(v_rows, rows))
        self.assign_sub(variable, tf.IndexedSlices(
            alpha * m_rows / (tf.sqrt(v_rows) + self.epsilon), rows))


def make_optimizer(name: str, *, learning_rate: float,
                   clipnorm: float) -> keras.optimizers.Optimizer:
    """The optimizer called ``name``; ``clipnorm`` 0 turns gradient clipping off."""
    classes = {
        "adam": keras.optimizers.Adam,
        "lazy_adam": LazyAdam,
        "adamw": keras.optimizers.AdamW,
        "rmsprop": keras.optimizers.RMSprop,
        "sgd": keras.optimizers.SGD,
    }
    if name not in classes:
        raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(sorted(classes))}")
    clip = {"clipnorm": clipnorm} if clipnorm > 0 else {}
    return classes[name](learning_rate=learning_rate, **clip)


def set_precision(mixed: bool, *, key: str = "train") -> None:
    """Keras' global dtype policy for the models built next: ``mixed_float16`` (float16
    compute, float32 weights; the output layers stay float32) when ``mixed``, else ``float32``.

    Refused without a GPU: on CPU float16 arithmetic is emulated and slower than float32.
    """
    if mixed:
        from textrnn.layers import gpu_visible

        if not gpu_visible():
            raise UserError(f"{key}: mixed_precision is true but TensorFlow sees no GPU "
                            "(float16 is slower than float32 on CPU): set it to false")
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")


def compile_model(
    model: keras.Model, fit: FitParams, *, loss: Any, metrics: Sequence[Any] = (),
    steps_per_execution: int = 1,
) -> keras.Model:
    """Compile ``model`` with the optimizer, learning rate and clipnorm of ``fit``.

    ``steps_per_execution`` batches run in one call of the compiled train step: the same
    arithmetic, less Python and dispatch overhead per batch (progress and callbacks that act
    per batch then see every ``steps_per_execution``-th batch; per-epoch ones are unaffected).
    """
    optimizer = make_optimizer(fit.optimizer, learning_rate=fit.learning_rate,
                               clipnorm=fit.clipnorm)
    model.compile(optimizer=optimizer, loss=loss, metrics=list(metrics),
                  steps_per_execution=steps_per_execution)
    return model


def _mode(monitor: str) -> str:
    # Same rule as Keras' mode="auto": accuracies and AUCs go up, everything else goes down.
    return "max" if any(key in monitor for key in ("acc", "auc")) else "min"


def _best_index(values: Sequence[float], mode: str) -> int:
    pick = max if mode == "max" else min
    return values.index(pick(values))


class _EpochLog(keras.callbacks.Callback):
    """Keeps the per-epoch history in ``path`` and hands earlier epochs to resumable callbacks.

    Must come first in the callback list: on the first epoch of a (possibly resumed) ``fit`` it
    drops rows at or after that epoch (they belong to an epoch that did not complete its backup)
    and seeds the other callbacks' state from the rows it keeps.
    """

    def __init__(self, path: Path, resumables: Iterable[Any], verbose: bool,
                 derived: Callable[[dict[str, float]], dict[str, float]] | None = None):
        super().__init__()
        self.path = path
        self.derived = derived
        self.resumables = list(resumables)
        self.verbose = verbose
        self.rows: list[dict[str, float]] = (
            json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
        )
        self._seeded = False
        self._started = 0.0
        self._lr = math.nan
        self._run_id: str | None = None
        self._step_offset = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        # Live curves: epoch e goes to the active MLflow run at step offset + e + 1, the offset
        # being the steps earlier fits logged to the same run (the folds of a tuning trial).
        self._run_id = _active_run_id()
        self._step_offset = _steps_logged.get(self._run_id, 0) if self._run_id else 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if not self._seeded:
            self.rows = [row for row in self.rows if row["epoch"] < epoch]
            if self.rows:
                log.info("resuming at epoch %d with %d earlier epochs", epoch + 1, len(self.rows))
                for callback in self.resumables:
                    callback.resume(self.rows)
            self._seeded = True
        self._lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        row = {"epoch": epoch}
        row.update({k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"})
        if self.derived is not None:
            row.update(self.derived(row))
        row["lr"] = self._lr
        row["epoch_seconds"] = time.perf_counter() - self._started
        self.rows.append(row)
        write_json(self.path, self.rows)
        if self._run_id is not None:
            _log_live(self._run_id, row, self._step_offset + epoch + 1)
        if self.verbose:
            shown = "  ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "epoch")
            log.info("epoch %d/%d  %s", epoch + 1, self.params.get("epochs", 0), shown)


_steps_logged: dict[str, int] = {}   # MLflow run id -> last step a fit in this process logged


def _active_run_id() -> str | None:
    """The active MLflow run's id; None when nobody imported MLflow or no run is open."""
    if "mlflow" not in sys.modules:
        return None
    import mlflow

    run = mlflow.active_run()
    return run.info.run_id if run is not None else None


def _log_live(run_id: str, row: dict[str, float], step: int) -> None:
    """Send an epoch's row to MLflow run ``run_id`` at ``step``. A tracking failure costs a
    warning, never the training."""
    import mlflow

    _steps_logged[run_id] = step
    try:
        mlflow.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=step)
    except Exception as exc:  # noqa: BLE001 (any tracking error: the epoch itself is done)
        log.warning("epoch %d not logged to MLflow: %s", step, str(exc).splitlines()[0][:200])


class _ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    def resume(self, rows: list[dict[str, float]]) -> None:
        values = [row[self.monitor] for row in rows]
        best = _best_index(values, self.mode)
        self.best, self.best_epoch = values[best], int(rows[best]["epoch"])
        self.wait = len(values) - 1 - best


class _ResumableReduceLR(keras.callbacks.ReduceLROnPlateau):
    def resume(self, rows: list[dict[str, float]]) -> None:
        values = [row[self.monitor] for row in rows]
        best = _best_index(values, self.mode)
        self.best, self.wait = values[best], len(values) - 1 - best


class _ResumableCheckpoint(keras.callbacks.ModelCheckpoint):
    def resume(self, rows: list[dict[str, float]]) -> None:
        values = [row[self.monitor] for row in rows]
        self.best = values[_best_index(values, self.mode)]


def fit(
    model: keras.Model,
    train_ds: Any,
    val_ds: Any,
    *,
    epochs: int,
    patience: int,
    work_dir: Path,
    monitor: str = "val_loss",
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 2,
    derived: Callable[[dict[str, float]], dict[str, float]] | None = None,
) -> dict[str, list[float]]:
    """Train ``model`` (compiled) and return the per-epoch history: ``{name: [value per epoch]}``.

    The history holds every metric Keras logs (``loss``, ``val_loss``, ...) plus ``epoch`` (from
    0), ``lr`` (learning rate used in that epoch), ``epoch_seconds`` and what ``derived(row)``
    returns for each epoch's row (e.g. perplexities from the losses). On return the model holds
    the weights of the best epoch by ``monitor``. ``work_dir`` keeps the backup, the best weights
    and the history; the backup is deleted when training completes, the rest is left for the caller.
    Learning-rate reduction waits half the early-stopping patience (at least one epoch).
    """
    if epochs < 1 or patience < 1:
        raise ValueError(f"epochs and patience must be >= 1, got {epochs} and {patience}")
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    mode = _mode(monitor)
    best_path = work_dir / BEST_WEIGHTS_FILE

    early = _ResumableEarlyStopping(
        monitor=monitor, mode=mode, patience=patience, restore_best_weights=True
    )
    reduce_lr = _ResumableReduceLR(
        monitor=monitor, mode=mode, factor=0.5, patience=max(1, patience // 2), min_lr=1e-6
    )
    checkpoint = _ResumableCheckpoint(
        best_path, monitor=monitor, mode=mode, save_best_only=True, save_weights_only=True
    )
    epoch_log = _EpochLog(work_dir / HISTORY_FILE, [early, reduce_lr, checkpoint], bool(verbose),
                          derived)
    # BackupAndRestore goes last, so that an epoch is only 'done' once every other callback has
    # recorded it; the first epoch of a resumed run sees the others' state seeded by _EpochLog.
    callbacks = [
        epoch_log, early, reduce_lr, checkpoint, *extra_callbacks,
        keras.callbacks.BackupAndRestore(str(work_dir / BACKUP_DIR)),
    ]
    # The display: verbose 2 (default, suits DVC logs) one line per epoch with lr and seconds;
    # 1 adds Keras' progress bar within each epoch; 0 is silent.
    model.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=callbacks,
              verbose=1 if verbose == 1 else 0,
              shuffle=False)  # datasets arrive shuffled (and seeded) by the caller
    if best_path.exists():  # covers epochs from before a resume, which EarlyStopping never saw
        model.load_weights(best_path)
    return history_columns(epoch_log.rows)


def prepare_work_dir(work_dir: Path, fingerprint: dict[str, Any]) -> Path:
    """Create ``work_dir`` for :func:`fit`, emptied first when it holds state of another setup.

    ``fingerprint`` (JSON-able: params, data digest, ...) is stored in the folder; a resumed run
    only reuses a backup made with an identical fingerprint, never one of other params or data.
    """
    import shutil

    work_dir = Path(work_dir)
    stamp = work_dir / "fingerprint.json"
    wanted = json.loads(json.dumps(fingerprint, sort_keys=True))
    if work_dir.exists():
        found = json.loads(stamp.read_text(encoding="utf-8")) if stamp.exists() else None
        if found != wanted:
            shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    write_json(stamp, wanted)
    return work_dir


def history_columns(rows: Sequence[dict[str, float]]) -> dict[str, list[float]]:
    """Rows ``[{'loss': .., ...}, ...]`` -> columns ``{'loss': [..], ...}``."""
    keys = list(dict.fromkeys(key for row in rows for key in row))
    return {key: [row.get(key, math.nan) for row in rows] for key in keys}
