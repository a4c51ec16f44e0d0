"""tune_charlm@<model>: search the language model's hyperparameters on validation perplexity.

-> models/charlm/<model>/best_params.json (read by train_charlm@<model>)
-> plots/tune/charlm/<model>/ (trials table, intermediate values, importances, three plots)

``python -m stages.tune_charlm lstm --worker`` joins the same study from another process or
machine (tune.storage must then be a PostgreSQL URL all of them reach) and writes nothing.
"""

from __future__ import annotations

from textrnn import paths
from textrnn.config import load_params
from textrnn.errors import UserError
from textrnn.handoff import charlm_split, file_digest, read_spec, read_tune_spec
from textrnn.paths import CHARLM_SPLITS
from textrnn.stage import run
from textrnn.tuning.runner import TuneJob, searched_values, tune, worker_args


def main() -> None:
    args = worker_args("charlm")
    params = load_params("seed", "data", "train", "tune", "tracking")
    train = params.train.charlm
    if args.model not in train.models:
        raise UserError(f"{args.model!r} is not in train.charlm.models ({', '.join(train.models)})")
    kind, base = read_spec("charlm", args.model)
    # TensorFlow loads with the objective: only once params and model name are known good.
    from textrnn.tuning.objectives import CharlmObjective
    job = TuneJob(
        task="charlm", model=args.model, settings=read_tune_spec("charlm", args.model),
        base=base, metric="val_perplexity", direction="minimize",
        seed=params.seed, storage=params.tune.storage, heartbeat_s=params.tune.heartbeat_s,
        dataset=params.data.charlm,
        context={"data": file_digest(CHARLM_SPLITS / "train.txt", CHARLM_SPLITS / "val.txt"),
                 "sequence_length": train.sequence_length},
    )
    objective = CharlmObjective(
        model=args.model, kind=kind, base=job.base, train_text=charlm_split("train"),
        val_text=charlm_split("val"),
        sequence_length=train.sequence_length, seed=params.seed,
        fixed=job.settings.fixed if job.enabled else {}, key=job.key,
    )  # never the test split
    tune(job, objective, tracking_params=params.tracking,
         max_epochs=objective.max_epochs(searched_values(job.settings, "epochs")),
         best_params_path=None if args.worker else paths.best_params_path("charlm", args.model),
         plots_dir=None if args.worker else paths.tune_plots_dir("charlm", args.model))


if __name__ == "__main__":
    run(main)
