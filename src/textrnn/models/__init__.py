"""The one model registry: (task, name) -> builder.

Sentiment builders live in :mod:`textrnn.models.sentiment`, character-LM builders in
:mod:`textrnn.models.charlm`; each module exposes a dict ``BUILDERS``. Modules are imported only
when their task is asked for (TensorFlow is slow to import, and a task's module may be absent).
Importing this package registers the custom layers that saved models need.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from textrnn.errors import UserError
from textrnn.models import layers as _layers  # noqa: F401 (registers custom layers for loading)

TASK_MODULES = {"sentiment": "textrnn.models.sentiment", "charlm": "textrnn.models.charlm"}


def builders(task: str) -> dict[str, Callable[..., Any]]:
    """All builders of ``task`` by name."""
    if task not in TASK_MODULES:
        raise UserError(f"unknown task {task!r}; known tasks: {', '.join(sorted(TASK_MODULES))}")
    try:
        module = importlib.import_module(TASK_MODULES[task])
    except ModuleNotFoundError as exc:
        if exc.name != TASK_MODULES[task]:
            raise
        raise UserError(f"no models are available for task {task!r} yet "
                        f"({TASK_MODULES[task]} is missing)") from None
    return dict(module.BUILDERS)


def get_builder(task: str, name: str) -> Callable[..., Any]:
    """The builder of model ``name`` for ``task``; an unknown name lists the known ones."""
    known = builders(task)
    if name not in known:
        raise UserError(f"unknown {task} model {name!r}; known {task} models: "
                        f"{', '.join(sorted(known))}")
    return known[name]
