"""training.fit: history shape, best weights restored, resume after a kill."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from textrnn.config import FitParams
from textrnn.seeding import seed_everything
from textrnn.training import (
    BACKUP_DIR,
    HISTORY_FILE,
    compile_model,
    fit,
    make_optimizer,
    prepare_work_dir,
)

FIT = FitParams(
    optimizer="adam", learning_rate=0.05, clipnorm=1.0, batch_size=16, epochs=6, patience=2
)


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(128, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int32")
    train = tf.data.Dataset.from_tensor_slices((x[:96], y[:96])).batch(16)
    val = tf.data.Dataset.from_tensor_slices((x[96:], y[96:])).batch(16)
    return train, val


def _model() -> keras.Model:
    inputs = keras.Input(shape=(4,))
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Dense(8, "relu")(inputs))
    model = keras.Model(inputs, outputs)
    return compile_model(model, FIT, loss="sparse_categorical_crossentropy", metrics=["accuracy"])


class _Kill(keras.callbacks.Callback):
    """Simulates a process killed during epoch ``at`` (0-based): that epoch never completes."""

    def __init__(self, at: int):
        super().__init__()
        self.at = at

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at:
            raise KeyboardInterrupt


def test_make_optimizer_clipnorm_zero_means_off():
    assert make_optimizer("sgd", learning_rate=0.1, clipnorm=0).clipnorm is None
    assert make_optimizer("adam", learning_rate=0.1, clipnorm=2.0).clipnorm == 2.0
    with pytest.raises(ValueError, match="known: adam"):
        make_optimizer("adagrad", learning_rate=0.1, clipnorm=0)


def test_fit_returns_history_with_lr_and_time_and_restores_best(tmp_path):
    seed_everything(0)
    train, val = _data()
    model = _model()
    history = fit(model, train, val, epochs=FIT.epochs, patience=FIT.patience,
                  work_dir=tmp_path, verbose=0)
    n = len(history["loss"])
    assert 1 <= n <= FIT.epochs
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_seconds", "epoch"):
        assert len(history[key]) == n, key
    assert history["epoch"] == list(range(n))
    assert history["lr"][0] == pytest.approx(FIT.learning_rate)
    assert all(s > 0 for s in history["epoch_seconds"])
    assert history["loss"][-1] < history["loss"][0]
    # the model holds the best epoch's weights
    val_loss = model.evaluate(val, verbose=0)[0]
    assert val_loss == pytest.approx(min(history["val_loss"]), rel=1e-4)
    assert not (tmp_path / BACKUP_DIR).exists()  # removed once training completed


def test_killed_run_resumes_after_last_completed_epoch(tmp_path):
    seed_everything(0)
    train, val = _data()
    model = _model()
    with pytest.raises(KeyboardInterrupt):
        fit(model, train, val, epochs=6, patience=10, work_dir=tmp_path, verbose=0,
            extra_callbacks=[_Kill(at=3)])
    saved = json.loads((tmp_path / HISTORY_FILE).read_text())
    assert [row["epoch"] for row in saved] == [0, 1, 2, 3]  # epoch 3 logged, not backed up
    assert (tmp_path / BACKUP_DIR).exists()

    started = []
    seed_everything(0)
    model = _model()  # a fresh process: new model, same work_dir
    history = fit(model, train, val, epochs=6, patience=10, work_dir=tmp_path, verbose=0,
                  extra_callbacks=[keras.callbacks.LambdaCallback(
                      on_epoch_begin=lambda epoch, logs: started.append(epoch))])
    assert started == [3, 4, 5]  # epochs 0-2 were not trained again
    assert history["epoch"] == [0, 1, 2, 3, 4, 5]
    assert history["loss"][:3] == [row["loss"] for row in saved[:3]]


def test_same_seed_same_history(tmp_path):
    runs = []
    for attempt in range(2):
        seed_everything(7)
        train, val = _data(seed=1)
        history = fit(_model(), train.shuffle(96, seed=7), val, epochs=3, patience=3,
                      work_dir=tmp_path / str(attempt), verbose=0)
        runs.append({k: v for k, v in history.items() if k != "epoch_seconds"})
    assert runs[0] == runs[1]


def test_work_dir_is_reset_when_the_fingerprint_changes(tmp_path):
    work = prepare_work_dir(tmp_path / "w", {"units": 8})
    (work / "backup").mkdir()
    assert (prepare_work_dir(tmp_path / "w", {"units": 8}) / "backup").exists()   # same: kept
    assert not (prepare_work_dir(tmp_path / "w", {"units": 9}) / "backup").exists()  # new: wiped


def _embedding_step(optimizer, batches, *, dense=False):
    """Train a 6-row embedding (sum of looked-up rows -> squared error) on ``batches`` of ids.

    ``dense`` hands the optimizer the gradient as one dense tensor (every row, duplicates summed).
    """
    seed_everything(0)
    table = keras.Variable(np.random.default_rng(0).normal(size=(6, 3)).astype("float32"))
    optimizer.build([table])
    for ids in batches:
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum((tf.reduce_sum(tf.gather(table.value, ids), axis=0) - 1.0) ** 2)
        grad = tape.gradient(loss, table.value)
        assert isinstance(grad, tf.IndexedSlices)  # what an embedding lookup hands the optimizer
        optimizer.apply([tf.convert_to_tensor(grad) if dense else grad], [table])
    return keras.ops.convert_to_numpy(table)


def test_lazy_adam_equals_adam_on_the_first_step_duplicates_included():
    start = _embedding_step(make_optimizer("sgd", learning_rate=0.0, clipnorm=0), [])
    batch = [tf.constant([1, 4, 1])]  # row 1 twice: its two gradients add up
    lazy = _embedding_step(make_optimizer("lazy_adam", learning_rate=0.1, clipnorm=0), batch)
    dense = _embedding_step(make_optimizer("adam", learning_rate=0.1, clipnorm=0), batch,
                            dense=True)
    np.testing.assert_allclose(lazy, dense, rtol=1e-6, atol=1e-6)
    moved = np.flatnonzero(np.abs(lazy - start).sum(axis=1) > 0)
    assert moved.tolist() == [1, 4]


def test_lazy_adam_leaves_rows_a_batch_does_not_use_where_adam_moves_them():
    batches = [tf.constant([1, 4]), tf.constant([2, 3])]
    after_first = _embedding_step(make_optimizer("lazy_adam", learning_rate=0.1, clipnorm=0),
                                  batches[:1])
    lazy = _embedding_step(make_optimizer("lazy_adam", learning_rate=0.1, clipnorm=0), batches)
    dense = _embedding_step(make_optimizer("adam", learning_rate=0.1, clipnorm=0), batches,
                            dense=True)
    # rows 1 and 4 are not in the second batch: lazy leaves them, Adam's momentum moves them
    np.testing.assert_array_equal(lazy[[1, 4]], after_first[[1, 4]])
    assert np.abs(dense[[1, 4]] - after_first[[1, 4]]).min() > 1e-3
    # rows 2 and 3 saw only the second batch in both: the same update (fresh moments)
    np.testing.assert_allclose(lazy[[2, 3]], dense[[2, 3]], rtol=1e-5)
    np.testing.assert_array_equal(lazy[[0, 5]], after_first[[0, 5]])  # never used


def test_lazy_adam_is_adam_for_dense_weights_and_steps_per_execution_changes_nothing(tmp_path):
    # Dense weights get Keras' Adam unchanged, so a network without an embedding trains the
    # same; running 3 batches per call of the train step gives the same numbers as one per call
    train, val = _data()
    lazy = FIT.model_copy(update={"optimizer": "lazy_adam"})
    histories = []
    for name, params, steps in (("adam", FIT, 1), ("lazy", lazy, 1), ("lazy3", lazy, 3)):
        seed_everything(0)
        inputs = keras.Input(shape=(4,))
        outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Dense(8, "relu")(inputs))
        model = compile_model(keras.Model(inputs, outputs), params,
                              loss="sparse_categorical_crossentropy", steps_per_execution=steps)
        histories.append(fit(model, train, val, epochs=3, patience=3, work_dir=tmp_path / name,
                             verbose=0)["val_loss"])
    assert histories[0] == histories[1] == histories[2]


class _Watch(keras.callbacks.Callback):
    """Reads the MLflow run while training goes on: which epochs has it received so far?"""

    def __init__(self, client, run_id):
        super().__init__()
        self.client, self.run_id, self.seen = client, run_id, []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append(len(self.client.get_metric_history(self.run_id, "val_loss")))


def test_each_epoch_reaches_the_active_mlflow_run_while_training_runs(tmp_path):
    """Live curves: epoch e is in MLflow before epoch e + 1 starts; a second fit in the same run
    (a cross-validated trial's next fold) continues the steps instead of overwriting them."""
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("live-curves")    # not an experiment id an earlier test left active
    client = mlflow.MlflowClient()
    train, val = _data()
    fit_params = FIT.model_copy(update={"epochs": 3, "patience": 5})
    try:
        with mlflow.start_run() as run:
            watch = _Watch(client, run.info.run_id)
            for fold in range(2):
                seed_everything(0)
                fit(_model(), train, val, epochs=fit_params.epochs, patience=fit_params.patience,
                    work_dir=tmp_path / f"fold{fold}", extra_callbacks=[watch], verbose=0)
    finally:
        mlflow.set_tracking_uri(None)
    assert watch.seen == [0, 1, 2, 3, 4, 5]     # one more epoch each time, while fitting
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert sorted(m.step for m in history) == [1, 2, 3, 4, 5, 6]
    for key in ("loss", "accuracy", "val_accuracy", "lr", "epoch_seconds"):
        assert len(client.get_metric_history(run.info.run_id, key)) == 6, key


def test_training_without_an_mlflow_run_logs_nowhere(tmp_path):
    import mlflow

    train, val = _data()
    assert mlflow.active_run() is None
    history = fit(_model(), train, val, epochs=1, patience=1, work_dir=tmp_path, verbose=0)
    assert len(history["loss"]) == 1
