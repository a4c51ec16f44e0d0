"""MLflow tracking: one run per stage invocation, tagged so a run leads back to its commit and data.

Every run that :func:`start_run` opens carries, besides the caller's tags:

- ``git_commit``, ``git_dirty``: the commit the code came from, and whether the tree differed;
- ``dvc_stage``: the DVC stage that ran it (``train_sentiment@lstm``);
- ``dvc_dep.<path>``: the md5 that ``dvc.lock`` records for the stage's data (``data/split/<task>``,
  an out of ``split@<task>``, which DVC locks before any downstream stage runs);
- ``params_sha256``: a hash of the params it was given (canonical JSON), so two runs with equal
  hashes were trained on the same settings.

Logging never changes results: nothing here touches random state or the data.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from textrnn import paths
from textrnn.errors import UserError
from textrnn.io import file_lock

log = logging.getLogger(__name__)

LOCAL_STORE = "sqlite:///mlflow.db"
PROBE_TIMEOUT_S = 5.0
# While configure() checks the store, MLflow's HTTP client may retry this often, waiting this long
# per request (its defaults, 7 retries with backoff and 120 s, turn a dead server into minutes).
CHECK_RETRIES, CHECK_TIMEOUT_S = "1", "10"
DEP_TAG = "dvc_dep."
PARAMS_TAG = "params_sha256"
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"
_STAGE = re.compile(r"^(?:tune|train|evaluate)_(?P<task>[A-Za-z0-9]+)(?:@.*)?$")


def git_info() -> dict[str, str]:
    """The current commit and whether the work tree has uncommitted changes ('unknown' outside
    git)."""
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


def params_hash(params: Mapping[str, Any] | None) -> str:
    """sha256 of the canonical JSON of ``params`` (sorted keys, no spaces; order never counts)."""
    canonical = json.dumps(params or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                           default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def data_paths(stage: str) -> list[str]:
    """The data a model stage reads, by convention: ``<verb>_<task>[@model]`` reads
    data/split/<task>."""
    match = _STAGE.match(stage)
    return [f"data/split/{match['task']}"] if match else []


def data_hashes(stage: str, lock_file: str | os.PathLike = "dvc.lock") -> dict[str, str]:
    """{path: md5} of the stage's data deps, as dvc.lock records them (outs of their stages).

    A path that dvc.lock does not hold yet (a stage run by hand before ``split``) is left out.
    """
    paths = data_paths(stage)
    if not paths:
        return {}
    import yaml

    try:
        lock = yaml.safe_load(Path(lock_file).read_text(encoding="utf-8")) or {}
        found: dict[str, str] = {}
        for entry in (lock.get("stages") or {}).values():
            for out in entry.get("outs") or []:
                path = str(out.get("path", "")).rstrip("/")
                if path in paths and out.get("md5"):
                    found[path] = str(out["md5"])
    except FileNotFoundError:
        return {}
    except (OSError, yaml.YAMLError, AttributeError, TypeError) as exc:
        # a malformed lock file must not stop a training run: it only loses these tags
        log.warning("%s unreadable (%s); the run is not tagged with data hashes", lock_file, exc)
        return {}
    return found


def run_tags(stage: str, params: Mapping[str, Any] | None,
             lock_file: str | os.PathLike = "dvc.lock") -> dict[str, str]:
    """The cross-link tags of a run of ``stage`` given ``params`` (see the module docstring)."""
    return {
        **git_info(),
        "dvc_stage": stage,
        **{f"{DEP_TAG}{path}": md5 for path, md5 in data_hashes(stage, lock_file).items()},
        PARAMS_TAG: params_hash(params),
    }


def _fallback_hint() -> str:
    return (f"to log locally instead, set tracking.uri: {LOCAL_STORE} in params.yaml "
            f"(or run `dvc exp run -S tracking.uri={LOCAL_STORE}`)")


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"


def probe_server(uri: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """For an http(s) store: GET <uri>/health once, within ``timeout_s``; a UserError if no answer.

    Any HTTP answer counts as reachable (an auth error is for MLflow's own message to explain).
    """
    import requests

    url = uri.rstrip("/") + "/health"
    try:
        requests.get(url, timeout=timeout_s)
    except requests.RequestException as exc:
        raise UserError(f"MLflow tracking server {uri!r} is not reachable ({_one_line(exc)}); "
                        f"start it, or {_fallback_hint()}") from None


@contextlib.contextmanager
def _bounded_http() -> Iterator[None]:
    """Few, short HTTP retries while checking (unless the user set their own), restored after."""
    limits = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": CHECK_RETRIES,
              "MLFLOW_HTTP_REQUEST_TIMEOUT": CHECK_TIMEOUT_S}
    added = [name for name in limits if name not in os.environ]
    os.environ.update({name: limits[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def configure(uri: str, experiment: str) -> None:
    """Point MLflow at ``uri`` and check it answers now, not after an hour of training.

    A tracking server that does not answer fails within seconds, in one line that says how to fall
    back to the local store.
    """
    import mlflow

    if uri.startswith(("http://", "https://")):
        probe_server(uri)
    uri = paths.store_url(uri)      # psycopg 3; a queued DVC experiment logs to the project's
    mlflow.set_tracking_uri(uri)
    database = paths.sqlite_file(uri)
    # Parallel experiments opening a new SQLite store together would all create its tables.
    first_contact = (file_lock(paths.lock_file(database)) if database is not None
                     else contextlib.nullcontext())
    try:
        with _bounded_http(), first_contact:
            _open_experiment(mlflow, experiment, local=database is not None)
    except Exception as exc:  # noqa: BLE001 (MLflow raises many kinds; all mean 'unreachable')
        raise UserError(
            f"MLflow tracking store {uri!r} is not reachable ({_one_line(exc)}); {_fallback_hint()}"
        ) from None


def _open_experiment(mlflow: Any, name: str, *, local: bool) -> None:
    """Make ``name`` the active experiment, creating it if needed: with a local store, its
    artifacts go to ``<project>/mlruns`` (not the working directory of whichever stage or
    queued experiment created it). Tagged as model training, so MLflow 3's UI opens an
    experiment on its runs (not on the GenAI overview)."""
    found = mlflow.get_experiment_by_name(name)
    if found is None:
        location = (paths.project_dir() / "mlruns").as_uri() if local else None
        try:
            mlflow.create_experiment(name, artifact_location=location)
        except Exception:  # noqa: BLE001 (created meanwhile by a parallel experiment: fine)
            if mlflow.get_experiment_by_name(name) is None:
                raise
    found = mlflow.set_experiment(name)
    if found.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
        mlflow.set_experiment_tag(EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)


def experiment_name() -> str | None:
    """The DVC experiment running this stage (``dvc exp run`` sets ``DVC_EXP_NAME``), or None."""
    return os.environ.get("DVC_EXP_NAME") or None


@contextlib.contextmanager
def start_run(
    *, run_name: str, stage: str, params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None, nested: bool = False, dataset: str | None = None,
) -> Iterator[Any]:
    """Start an MLflow run tagged with git commit, dirty flag, DVC stage, data and params hashes;
    log flat params. The caller's ``tags`` win over the automatic ones.

    Runs of different datasets and DVC experiments are told apart: ``dataset`` and the DVC
    experiment's name (when ``dvc exp run`` runs the stage) go into the run name
    (``sentiment/lstm · imdb · exp-1a2b3``) and the tags ``dataset`` and ``dvc_experiment``.
    """
    import mlflow

    experiment = experiment_name()
    labels = [label for label in (dataset, experiment) if label]
    if labels and not nested:
        run_name = " · ".join([run_name, *labels])
    extra = {**({"dataset": dataset} if dataset else {}),
             **({"dvc_experiment": experiment} if experiment else {})}
    all_tags = {**run_tags(stage, params), **extra, **(tags or {})}
    with mlflow.start_run(run_name=run_name, tags=all_tags, nested=nested) as run:
        if params:
            mlflow.log_params(flatten(params))
        yield run


# ----------------------------------------------------------------------------- `textrnn ui`


def ui_command(params_file: str | os.PathLike = "params.yaml", *, port: int = 5000,
               mlflow_bin: str = "mlflow") -> list[str] | None:
    """The `mlflow ui` command over params.yaml's tracking store, listening on loopback only;
    None when the store is a tracking server, which has its own UI at its address."""
    from textrnn.config import load_params

    uri = load_params("tracking", path=params_file).tracking.uri
    if uri.startswith(("http://", "https://")):
        return None
    return [mlflow_bin, "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
            "--port", str(port), "--workers", "1"]    # one person's UI: one worker is plenty


def runs_page(params_file: str | os.PathLike = "params.yaml") -> str:
    """The UI path of params.yaml's experiment (``/#/experiments/<id>``, which opens on its runs:
    :func:`configure` tags it as model training), or ``/`` before its first run."""
    import mlflow

    from textrnn.config import load_params

    tracking = load_params("tracking", path=params_file).tracking
    try:
        found = mlflow.MlflowClient(tracking_uri=tracking.uri).get_experiment_by_name(
            tracking.experiment)
    except Exception:  # noqa: BLE001 (no store yet, or unreadable: the UI's home page)
        return "/"
    return f"/#/experiments/{found.experiment_id}" if found is not None else "/"


def log_splits(dataset: str, splits: Mapping[str, Any], *, targets: str | None = None,
               source: str | os.PathLike | None = None) -> None:
    """Log each split (``{split: pandas DataFrame}``) to the active run as an MLflow dataset
    input: name ``<dataset>/<split>``, MLflow's digest of its rows, the split as context. The
    UI's Dataset column then names what each run was trained and validated on."""
    import warnings

    import mlflow

    for split, frame in splits.items():
        with warnings.catch_warnings():   # "can be interpreted in multiple ways": a local file
            warnings.simplefilter("ignore", UserWarning)
            data = mlflow.data.from_pandas(frame, source=str(source) if source else None,
                                           name=f"{dataset}/{split}", targets=targets)
        mlflow.log_input(data, context=split)
