"""resolve@<task>: every model of train.<task>.models, resolved from params.yaml.

-> models/specs/<task>/<name>/model.json   kind + full params (the kind's defaults + the entry)
-> models/specs/<task>/<name>/tune.json    how the model is searched (null: not tuned)

The dataset of the task (data.<task>) chooses its profile (profiles.<task>.<dataset>): the
defaults it replaces are replaced here, so every later stage sees one set of values.

tune@<name> and train@<name> depend on their model's files, not on params.yaml's sections: a
change to a shared default reruns every model that uses it, and no other. A mistake (an unknown
kind, a bad value, a reserved name) stops here, in one line naming the key, before anything runs.
"""

from __future__ import annotations

import sys

from textrnn import paths
from textrnn.catalog import resolve_models
from textrnn.config import load_params, profile_changes, read_params, read_yaml
from textrnn.errors import ParamsError
from textrnn.io import atomic_dir, write_json
from textrnn.stage import run, task_from_argv


def main() -> None:
    task = task_from_argv(sys.argv, "python -m stages.resolve")
    params = load_params("train", "tune")          # the structure, checked
    raw = read_params("params.yaml")               # the values, checked per kind below,
                                                   # with the dataset's profile laid over them
    changes = profile_changes(read_yaml("params.yaml"), task)
    if changes:
        dataset = raw["data"][task]
        print(f"resolve@{task}: profile {dataset} (profiles.{task}.{dataset}) sets "
              + ", ".join(f"{key}={value}" for key, value in changes))
    specs = resolve_models(task, raw["train"][task], raw["tune"][task])
    if task == "sentiment":
        not_neural = [m for m in params.train.sentiment.ensemble.members
                      if not specs[m].kind.neural]
        if not_neural:
            raise ParamsError(f"params.yaml: train.sentiment.ensemble.members {not_neural} are "
                              "not neural models: the ensemble averages Keras networks only")
    with atomic_dir(paths.spec_dir(task)) as tmp:
        for name, spec in specs.items():
            # params.yaml's order: the order of a space's dimensions is the order of the draws
            write_json(tmp / name / "model.json", spec.to_json(), sort_keys=False)
            write_json(tmp / name / "tune.json", spec.tune_json(), sort_keys=False)
    print(f"resolve@{task}: " + ", ".join(f"{n} ({s.kind.name})" for n, s in specs.items())
          + f" -> {paths.spec_dir(task)}")


if __name__ == "__main__":
    run(main)
