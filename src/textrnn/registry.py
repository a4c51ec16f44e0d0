"""The MLflow Model Registry: every trained model is a version of ``textrnn-<task>``; the one that
evaluate chose carries the alias ``champion``, and the service can load it from there.

Each version is an MLflow pyfunc wrapping the saved model folder exactly as the pipeline wrote it
(``models/<task>/<name>/model/``: model.keras or model.skops, meta.json, vocab.json), so the
registry serves the same bytes as ``models/``, through the same loading code. The pyfunc needs the
``textrnn`` package installed where it is loaded (it calls :mod:`textrnn.sentiment.models` and
:mod:`textrnn.charlm.decoding`).

- sentiment: input a DataFrame with a string column ``text``; output one float column per class
  (the probabilities, in meta.json's class order).
- charlm: input a string column ``prompt``; output a string column ``text`` (the continuation);
  the decoder settings are signature params (``length``, ``strategy``, ``temperature``, ...).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from textrnn import model_files
from textrnn.errors import UserError
from textrnn.model_files import ModelMeta

log = logging.getLogger(__name__)

REGISTERED_NAMES = {"sentiment": "textrnn-sentiment", "charlm": "textrnn-charlm"}
CHAMPION = "champion"
ARTIFACT_KEY = "model_dir"          # the saved model folder, inside the pyfunc's artifacts
# MLflow "models from code": this file, copied into each logged model, builds the pyfunc when the
# model is loaded (no pickled Python object to trust).
PYFUNC_CODE = Path(__file__).with_name("mlflow_pyfunc.py")
SENTIMENT_EXAMPLE = ["a great phone, it works well", "awful: it broke after a day"]
CHARLM_EXAMPLE = ["En un lugar de la Mancha"]
GENERATION_DEFAULTS = {"length": 100, "strategy": "greedy", "temperature": 1.0, "beam_width": 5,
                       "top_k": 0, "seed": 0}


def registered_name(task: str) -> str:
    try:
        return REGISTERED_NAMES[task]
    except KeyError:
        raise UserError(f"unknown task {task!r}; known: {', '.join(REGISTERED_NAMES)}") from None


def _texts(model_input: Any, column: str) -> list[str]:
    """The strings of ``column`` of a DataFrame (or a plain list / Series of strings)."""
    if isinstance(model_input, pd.DataFrame):
        if column not in model_input.columns:
            raise ValueError(f"input needs a string column {column!r}; got {list(model_input)}")
        values = model_input[column]
    else:
        values = model_input
    return [str(value) for value in list(values)]


class TextrnnModel(mlflow.pyfunc.PythonModel):
    """The pyfunc of both tasks; ``model_config["task"]`` says which one it wraps.

    sentiment: texts -> class probabilities, through :func:`textrnn.sentiment.models.load`;
    charlm: prompts -> continuations, through :func:`textrnn.charlm.decoding.generator_from_folder`.
    """

    def load_context(self, context):
        self.task = context.model_config["task"]
        folder = context.artifacts[ARTIFACT_KEY]
        if self.task == "sentiment":
            from textrnn.sentiment import models

            self._model = models.load(folder)
        else:
            from textrnn.charlm import decoding

            self._model = decoding.generator_from_folder(folder)

    def predict(self, context, model_input, params=None):   # no type hints: the signature rules
        if self.task == "sentiment":
            probabilities = self._model.predict_proba(_texts(model_input, "text"))
            return pd.DataFrame(probabilities, columns=list(self._model.classes)).astype("float64")
        options = {**GENERATION_DEFAULTS, **(params or {})}
        return pd.DataFrame({"text": [self._model.generate(prompt, **options)
                                      for prompt in _texts(model_input, "prompt")]})


def read_meta(model_dir: Path) -> ModelMeta:
    """meta.json of a saved model folder, through the shared loader
    (:func:`textrnn.model_files.read_meta`); the registry needs its ``task`` and ``model``."""
    return model_files.read_meta(model_dir, required=("task", "model"))


def signature(meta: ModelMeta) -> ModelSignature:
    if meta.task == "sentiment":
        return ModelSignature(inputs=Schema([ColSpec("string", "text")]),
                              outputs=Schema([ColSpec("double", c) for c in meta.classes or ()]))
    return ModelSignature(
        inputs=Schema([ColSpec("string", "prompt")]),
        outputs=Schema([ColSpec("string", "text")]),
        params=ParamSchema([ParamSpec(name, _param_type(value), value)
                            for name, value in GENERATION_DEFAULTS.items()]))


def _param_type(value: Any) -> str:
    return {bool: "boolean", int: "long", float: "double", str: "string"}[type(value)]


def log_model(model_dir: str | Path, *, register: bool = True) -> Any:
    """Log the saved model in ``model_dir`` to the active run as a pyfunc with a signature and an
    input example, and (``register``) as a new version of ``textrnn-<task>``, tagged with the
    model's name. Returns the new :class:`ModelVersion` (or the ModelInfo when not registering).

    Call it inside the run that trained the model (``tracking.start_run``) after meta.json is
    written, so the version links to that run.
    """
    model_dir = Path(model_dir)
    meta = read_meta(model_dir)
    task, name = meta.task, meta.model
    if mlflow.active_run() is None:
        raise UserError("registry.log_model needs an active MLflow run (tracking.start_run)")
    column, example = (("text", SENTIMENT_EXAMPLE) if task == "sentiment"
                       else ("prompt", _charlm_example(model_dir)))
    info = mlflow.pyfunc.log_model(
        name=task, python_model=str(PYFUNC_CODE), model_config={"task": task},
        artifacts={ARTIFACT_KEY: str(model_dir)},
        signature=signature(meta), input_example=pd.DataFrame({column: example}),
        pip_requirements=_requirements(model_dir), tags={"task": task, "model": name},
        registered_model_name=registered_name(task) if register else None,
    )
    if not register:
        return info
    version = _version_of(registered_name(task), info)
    client = mlflow.MlflowClient()
    for key, value in {"task": task, "model": name, "dataset": meta.dataset,
                       "git_commit": meta.git_commit}.items():
        if value is not None:
            client.set_model_version_tag(version.name, version.version, key, str(value))
    log.info("registered %s version %s (%s)", version.name, version.version, name)
    return version


def _charlm_example(model_dir: Path) -> list[str]:
    """The default prompt, or (a corpus without its letters) the model's first known characters."""
    try:
        known = json.loads((model_dir / "vocab.json").read_text(encoding="utf-8"))[1:]
    except (OSError, ValueError, TypeError):
        return CHARLM_EXAMPLE
    if all(char in known for char in CHARLM_EXAMPLE[0]) or not known:
        return CHARLM_EXAMPLE
    return ["".join(known[:10])]


def _version_of(name: str, info: Any) -> Any:
    version = getattr(info, "registered_model_version", None)
    client = mlflow.MlflowClient()
    if version is not None:
        return client.get_model_version(name, str(version))
    found = client.search_model_versions(f"name='{name}' and run_id='{info.run_id}'")
    return max(found, key=lambda v: int(v.version))


def _requirements(model_dir: Path) -> list[str]:
    """Pinned from this environment (MLflow's own inference would load TensorFlow once more).

    TensorFlow is pinned as ``tensorflow``, whichever build is installed here (the default
    ``tensorflow-cpu``, or the CUDA one of ``make setup GPU=1``): that package runs on CPU and
    uses a GPU where CUDA is installed, so a registered model never forces the CPU build.
    """
    from importlib.metadata import PackageNotFoundError, version

    names = ["mlflow", "numpy", "pandas", "keras"]
    if (model_dir / "model.skops").exists():
        names = ["mlflow", "numpy", "pandas", "scikit-learn", "skops", "keras"]
    pins = []
    for name in names:
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    for build in ("tensorflow", "tensorflow-cpu"):
        try:
            pins.append(f"tensorflow=={version(build)}")
            break
        except PackageNotFoundError:
            continue
    return pins


def set_champion(task: str, run_id: str | None, *, selected_on: str | None = None,
                 value: float | None = None) -> Any | None:
    """Point the alias ``champion`` of ``textrnn-<task>`` at the version logged by run ``run_id``
    (the chosen model's ``mlflow_run_id`` in meta.json). Returns that version, or None (with a
    warning) when the run registered none, e.g. a model trained against another tracking store."""
    name = registered_name(task)
    client = mlflow.MlflowClient()
    found = (client.search_model_versions(f"name='{name}' and run_id='{run_id}'")
             if run_id else [])
    if not found:
        log.warning("no version of %s was logged by run %s: the %r alias is unchanged",
                    name, run_id, CHAMPION)
        return None
    version = max(found, key=lambda v: int(v.version))
    client.set_registered_model_alias(name, CHAMPION, version.version)
    for key, tag in {"selected_on": selected_on, "selected_value": value}.items():
        if tag is not None:
            client.set_model_version_tag(name, version.version, key, str(tag))
    log.info("%s@%s -> version %s", name, CHAMPION, version.version)
    return version


# ----------------------------------------------------------------------------- loading


def download_champion(task: str, dest: str | Path, *,
                      tracking_uri: str | None = None) -> tuple[Path, Any]:
    """Download the champion of ``task`` into ``dest``: (its saved model folder, its version)."""
    name = registered_name(task)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    try:
        version = client.get_model_version_by_alias(name, CHAMPION)
    except Exception as exc:  # noqa: BLE001 (MLflow raises RestException / MlflowException)
        raise UserError(f"the registry at {tracking_uri or mlflow.get_tracking_uri()!r} has no "
                        f"{name}@{CHAMPION} ({' '.join(str(exc).split())[:200]}): run "
                        "`dvc repro` against this tracking store first") from None
    # not "models:/name@alias": MLflow resolves that against the global registry URI
    source = client.get_model_version_download_uri(name, version.version)
    Path(dest).mkdir(parents=True, exist_ok=True)
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(dest),
                                                     tracking_uri=tracking_uri))
    return _saved_folder(local), version


def _saved_folder(pyfunc_dir: Path) -> Path:
    """The wrapped model folder inside a downloaded pyfunc (the path its MLmodel file names)."""
    from mlflow.models import Model

    flavor = Model.load(str(pyfunc_dir)).flavors.get("python_function", {})
    relative = (flavor.get("artifacts") or {}).get(ARTIFACT_KEY, {}).get("path")
    if not relative:
        raise UserError(f"{pyfunc_dir}: not a textrnn model (no {ARTIFACT_KEY!r} artifact)")
    return pyfunc_dir / relative


def has_champion(task: str, *, tracking_uri: str | None = None) -> bool:
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    try:
        client.get_model_version_by_alias(registered_name(task), CHAMPION)
    except Exception:  # noqa: BLE001 (no such model, or no such alias)
        return False
    return True
