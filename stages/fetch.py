"""fetch@<task>: put the raw file of the task's dataset into data/raw/<task>/.

Reads the mirror folder named by $TEXTRNN_DATA_MIRROR when it holds the file, else downloads.
"""

from __future__ import annotations

import os
import sys

from textrnn.config import load_params
from textrnn.data.sources import MIRROR_ENV, fetch
from textrnn.io import atomic_dir
from textrnn.stage import run, task_from_argv


def main() -> None:
    task = task_from_argv(sys.argv, "python -m stages.fetch")
    params = load_params("data", "fetch")
    dataset = getattr(params.data, task)
    # Fetch into a fresh folder and swap it in at the end: a failure leaves data/raw as it was.
    with atomic_dir(f"data/raw/{task}") as out_dir:
        path = fetch(dataset, out_dir, timeout_s=params.fetch.timeout_s,
                     retries=params.fetch.retries, mirror=os.environ.get(MIRROR_ENV) or None)
    print(f"fetch@{task}: {dataset} -> data/raw/{task}/{path.name}")


if __name__ == "__main__":
    run(main)
