"""MLflow tracking: one run per stage invocation, tagged so a run leads back to its commit.

Logging never changes results: nothing here touches random state or the data.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
from collections.abc import Iterator, Mapping
from typing import Any

from textrnn.errors import UserError

log = logging.getLogger(__name__)


def git_info() -> dict[str, str]:
    """The current commit and whether the work tree has uncommitted changes ('unknown' outside git)."""
    def _git(*args: str) -> str | None:
        try:
            return subprocess.run(
                ["git", *args], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "git_commit": commit or "unknown",
        "git_dirty": "unknown" if status is None else str(bool(status)).lower(),
    }


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}, the shape MLflow params take."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def configure(uri: str, experiment: str) -> None:
    """Point MLflow at ``uri`` and check it answers now, not after an hour of training."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    try:
        mlflow.set_experiment(experiment)
    except Exception as exc:  # noqa: BLE001 (MLflow raises many kinds; all mean 'unreachable')
        raise UserError(
            f"MLflow tracking store {uri!r} is not reachable ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:200]}); to log locally instead set "
            "tracking.uri: sqlite:///mlflow.db in params.yaml"
        ) from None


@contextlib.contextmanager
def start_run(
    *, run_name: str, stage: str, params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None, nested: bool = False,
) -> Iterator[Any]:
    """Start an MLflow run tagged with git commit, dirty flag and DVC stage; log flat params."""
    import mlflow

    all_tags = {**git_info(), "dvc_stage": stage, **(tags or {})}
    with mlflow.start_run(run_name=run_name, tags=all_tags, nested=nested) as run:
        if params:
            mlflow.log_params(flatten(params))
        yield run
