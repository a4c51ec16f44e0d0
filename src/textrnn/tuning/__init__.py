"""Hyperparameter search on Optuna: search spaces from params.yaml, resumable studies, reports.

- :mod:`textrnn.tuning.space`: parse and check a search space; suggest a trial's params.
- :mod:`textrnn.tuning.study`: sampler, pruner, and the worker loop that shares one study
  between processes and machines without losing or duplicating a trial.
- :mod:`textrnn.tuning.storage`: SQLite or PostgreSQL storage and the lock on trial claims.
- :mod:`textrnn.tuning.keras_pruning`: the per-epoch Keras callback that reports to a trial.
- :mod:`textrnn.tuning.report`: the trials table, intermediate values, plots, best params.
- :mod:`textrnn.tuning.objectives`: what one trial trains and scores, per task.
- :mod:`textrnn.tuning.runner`: one model's tune stage (study, MLflow runs, outputs).

Importing this package imports nothing heavy (config.py uses :mod:`textrnn.tuning.space`).
"""
