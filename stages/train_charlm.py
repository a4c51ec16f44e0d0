"""train_charlm@<model>: fit one character-level language model on train, early-stopped on val.

-> models/charlm/<model>/model/            model.keras (ids -> logits), vocab.json, meta.json
-> plots/charlm/history/<model>.csv        per-epoch loss, perplexity, val_loss, val_perplexity,
                                           lr, epoch_seconds
-> models/charlm/<model>/train_state/      backup kept between runs: a killed run resumes
-> metrics/trained/charlm/<model>.json     val metrics, the model's digest (for evaluate)
Reads models/specs/charlm/<model>/model.json (resolve: kind and params) and
models/charlm/<model>/best_params.json (tune) when it exists. Prints one line per tuned value.
"""

from __future__ import annotations

import hashlib
import sys
import time
from datetime import UTC, datetime

from textrnn import paths, tracking
from textrnn.config import load_params
from textrnn.handoff import (
    charlm_split,
    describe_changes,
    read_spec,
    tuned_params,
    write_history,
    write_trained_record,
)
from textrnn.io import atomic_dir
from textrnn.stage import model_from_argv, run

HISTORY_COLUMNS = ("loss", "perplexity", "val_loss", "val_perplexity", "lr",
                   "epoch_seconds")


def main() -> None:
    params = load_params("seed", "data", "train", "tracking")
    train_params = params.train.charlm
    name = model_from_argv(sys.argv, "train_charlm", "charlm", list(train_params.models))
    kind, yaml_params = read_spec("charlm", name)
    model_params, tuned, changes = tuned_params(yaml_params, paths.best_params_path("charlm", name))
    for line in describe_changes(changes):
        print(f"train_charlm@{name}: {line}")
    train_text, val_text = charlm_split("train"), charlm_split("val")   # never test

    import mlflow

    from textrnn.charlm import train as charlm_train
    from textrnn.layers import describe_kernels, recurrent_kernels
    from textrnn.seeding import seed_everything
    from textrnn.training import prepare_work_dir

    seed_everything(params.seed)
    vocab = charlm_train.build_vocab(train_text)                           # train split only
    train_ids = charlm_train.encode(train_text, vocab)
    val_ids = charlm_train.encode(val_text, vocab)
    run_params = {"model": name, "kind": kind.name, "dataset": params.data.charlm,
                  "seed": params.seed, "tuned": tuned,
                  "sequence_length": train_params.sequence_length,
                  "vocab_size": len(vocab), "params": model_params.model_dump()}
    data_digest = hashlib.sha256((train_text + "\0" + val_text).encode("utf-8")).hexdigest()[:16]
    work_dir = prepare_work_dir(paths.train_state_dir("charlm", name),
                                {**run_params, "data": data_digest})

    tracking.configure(params.tracking.uri, params.tracking.experiment)
    from textrnn import registry

    with tracking.start_run(run_name=f"charlm/{name}", stage=f"train_charlm@{name}",
                            params=run_params, dataset=params.data.charlm,
                            tags={"task": "charlm", "model": name, "kind": kind.name}) as mlrun:
        import pandas as pd

        tracking.log_splits(params.data.charlm,
                            {split: pd.DataFrame({"line": text.splitlines()})
                             for split, text in (("train", train_text), ("validation", val_text))},
                            source=paths.CHARLM_SPLITS)
        started = time.perf_counter()
        model, history = charlm_train.fit_model(
            kind, model_params, vocab_size=len(vocab), train_ids=train_ids, val_ids=val_ids,
            sequence_length=train_params.sequence_length, seed=params.seed, work_dir=work_dir)
        train_seconds = time.perf_counter() - started
        kernels = describe_kernels(recurrent_kernels(model))
        mlflow.set_tag("recurrent_kernels", kernels)   # cudnn, fused BlockLSTM or keras loop
        best = min(range(len(history["val_loss"])), key=history["val_loss"].__getitem__)
        val_metrics = {"loss": history["val_loss"][best],
                       "perplexity": history["val_perplexity"][best], "best_epoch": best + 1}
        seconds = history["epoch_seconds"]
        timing = {"epochs": len(seconds), "seconds_per_epoch": sum(seconds) / len(seconds),
                  "train_seconds": train_seconds}
        mlflow.log_metrics({f"val/{k}": v for k, v in val_metrics.items()} | timing)

        model_dir = paths.model_dir("charlm", name)
        with atomic_dir(model_dir) as tmp:
            charlm_train.save(tmp, model, vocab, {
                "task": "charlm", "model": name, "kind": kind.name, "dataset": params.data.charlm,
                "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "git_commit": tracking.git_info()["git_commit"], "mlflow_run_id": mlrun.info.run_id,
                "val_metrics": val_metrics, "tuned": tuned, "vocab_size": len(vocab),
                "tuned_values": {k: {"params_yaml": old, "tuned": new}
                                 for k, (old, new) in changes.items()},
                "sequence_length": train_params.sequence_length, **timing,
            })
        write_history(paths.history_path("charlm", name), history, HISTORY_COLUMNS)
        registry.log_model(model_dir)  # pyfunc + signature + input example -> textrnn-charlm
        write_trained_record("charlm", name, kind=kind.name, model_dir=model_dir,
                             mlflow_run_id=mlrun.info.run_id, val=val_metrics)
    print(f"train_charlm@{name}: val perplexity {val_metrics['perplexity']:.3f} "
          f"(windows; best of {timing['epochs']} epochs, {timing['seconds_per_epoch']:.0f} s each; "
          f"recurrent kernels: {kernels}) "
          f"-> {model_dir}")


if __name__ == "__main__":
    run(main)
