"""fetch@<task>: put the raw file of the task's dataset into data/raw/<task>/.

Built-in datasets: read from the mirror folder named by $TEXTRNN_DATA_MIRROR when it holds the
file, else downloaded. The custom dataset: the user's file, folder or URL (data.custom.<task>).
Either way the file is validated before it is swapped in.
"""

from __future__ import annotations

import functools
import os
import sys

from textrnn.config import load_params
from textrnn.data import custom
from textrnn.data.sources import MIRROR_ENV, fetch, fetch_custom
from textrnn.io import atomic_dir
from textrnn.stage import run, task_from_argv

CUSTOM_VALIDATORS = {"sentiment": custom.load_table, "charlm": custom.load_text}


def main() -> None:
    task = task_from_argv(sys.argv, "python -m stages.fetch")
    params = load_params("data", "fetch")
    dataset = getattr(params.data, task)
    # Fetch into a fresh folder and swap it in at the end: a failure leaves data/raw as it was.
    with atomic_dir(f"data/raw/{task}") as out_dir:
        if dataset == "custom":
            cfg = getattr(params.data.custom, task)
            path = fetch_custom(cfg.path, out_dir, timeout_s=params.fetch.timeout_s,
                                retries=params.fetch.retries,
                                validate=functools.partial(CUSTOM_VALIDATORS[task], cfg=cfg))
        else:
            path = fetch(dataset, out_dir, timeout_s=params.fetch.timeout_s,
                         retries=params.fetch.retries, mirror=os.environ.get(MIRROR_ENV) or None)
    print(f"fetch@{task}: {dataset} -> data/raw/{task}/{path.name}")


if __name__ == "__main__":
    run(main)
