"""The one list of model kinds: every other list (params schema, tuning, builders, tests) derives
from it. Importable without TensorFlow.

A *kind* is an architecture (``lstm``, ``tfidf_logreg`` ...); a *model* is a user-named instance
of a kind in params.yaml (``lstm_256: {kind: lstm, units: 256}``). A model starts from the
defaults of its kind's group (``train.<task>.defaults.<group>``: the neural kinds of a task share
one group, ``network``) and changes only the keys its entry names. :func:`resolve_models` turns a
task's params sections into one :class:`ModelSpec` per model; stage ``resolve`` writes them to
``models/specs/<task>/<name>/`` for the tune and train stages.

Adding a kind is one :func:`register` call plus its builder code (``builder``: ``module:attr``,
imported only when a model of the kind is built, so TensorFlow loads late).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from textrnn.config import (
    CharlmNeuralParams,
    DummyParams,
    ModelTuneParams,
    SentimentNeuralParams,
    TfidfLogregParams,
    TransferParams,
    format_validation_error,
)
from textrnn.datasets import load_attribute
from textrnn.errors import ParamsError
from textrnn.paths import ENSEMBLE
from textrnn.stage import TASKS

# the ensemble stage saves its model as models/sentiment/ensemble: no model may take the name
RESERVED_NAMES = (ENSEMBLE,)


@dataclass(frozen=True)
class Kind:
    """One architecture of one task."""

    task: str
    name: str
    params: type[BaseModel]     # the validated params of a model of this kind
    group: str                  # its defaults: train.<task>.defaults.<group>,
                                # tune.<task>.defaults.<group>
    builder: str                # "module:attribute", called as builder(kind, params, **context)
    neural: bool                # trained by epochs (Keras); else a scikit-learn estimator
    cell: str | None = None     # recurrent kinds: the keras.layers class of one direction
    # sentiment network kinds that are neither dense nor recurrent (a 1-D CNN ...):
    # "module:attribute" of encoder(x, params, name) -> (batch, [time,] features), the layers
    # between the embedding and the pooling
    encoder: str | None = None
    # sentiment neural kinds not built by build_network: tuning trains each trial through the
    # model's own ``fit(..., callbacks=[...])`` instead of the shared network path
    own_fit: bool = False

    @property
    def recurrent(self) -> bool:
        return self.cell is not None

    def build(self, params: BaseModel, **context: Any) -> Any:
        return load_attribute(self.builder)(self, params, **context)


_KINDS: dict[tuple[str, str], Kind] = {}


def register(kind: Kind) -> Kind:
    """Declare ``kind``; its name must be new for its task."""
    if kind.task not in TASKS:
        raise ValueError(f"unknown task {kind.task!r}; known: {', '.join(TASKS)}")
    if (kind.task, kind.name) in _KINDS:
        raise ValueError(f"{kind.task} kind {kind.name!r} is already declared")
    _KINDS[(kind.task, kind.name)] = kind
    return kind


def unregister(task: str, name: str) -> None:
    """Forget a kind (for tests that declare a throw-away one)."""
    _KINDS.pop((task, name), None)


def kinds(task: str) -> dict[str, Kind]:
    return {name: kind for (t, name), kind in _KINDS.items() if t == task}


def get_kind(task: str, name: str) -> Kind:
    """The kind ``name`` of ``task``; an unknown name is an error listing the known ones."""
    known = kinds(task)
    if name not in known:
        raise ParamsError(f"unknown {task} model kind {name!r}; known kinds: "
                          f"{', '.join(sorted(known))}")
    return known[name]


_SENTIMENT_NETWORK = "textrnn.sentiment.models:build_keras"
_CHARLM = "textrnn.charlm.model:build_charlm"

register(Kind("sentiment", "dummy", DummyParams, "dummy",
              "textrnn.sentiment.models:build_dummy", neural=False))
register(Kind("sentiment", "tfidf_logreg", TfidfLogregParams, "tfidf_logreg",
              "textrnn.sentiment.models:build_tfidf_logreg", neural=False))
register(Kind("sentiment", "dnn", SentimentNeuralParams, "network", _SENTIMENT_NETWORK,
              neural=True))
# the pretrain_lm stage's language model fine-tuned into a classifier (ULMFiT-style); it trains
# itself (language-model fine-tuning, then gradual unfreezing): tuning calls its fit
register(Kind("sentiment", "lm_lstm", TransferParams, "transfer",
              "textrnn.sentiment.transfer:build_lm_classifier", neural=True, cell="LSTM",
              own_fit=True))
for _name, _cell in (("simple_rnn", "SimpleRNN"), ("lstm", "LSTM"), ("gru", "GRU")):
    register(Kind("sentiment", _name, SentimentNeuralParams, "network", _SENTIMENT_NETWORK,
                  neural=True, cell=_cell))
    register(Kind("charlm", _name, CharlmNeuralParams, "network", _CHARLM, neural=True,
                  cell=_cell))


# ----------------------------------------------------------------------------- resolution


@dataclass(frozen=True)
class ModelSpec:
    """One model of a task, resolved: its kind, its full params, how it is tuned."""

    task: str
    name: str
    kind: Kind
    params: BaseModel                  # defaults of the kind's group + the model's entry
    tune: ModelTuneParams | None       # None: not tuned
    tune_values: Mapping[str, Any] | None = None   # ``tune`` as params.yaml spells it

    @property
    def key(self) -> str:
        """Where a user changes this model in params.yaml."""
        return f"train.{self.task}.variants.{self.name}"

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "name": self.name, "kind": self.kind.name,
                "params": self.params.model_dump(mode="json")}

    def tune_json(self) -> dict[str, Any]:
        return {"task": self.task, "name": self.name, "kind": self.kind.name,
                "tune": None if self.tune_values is None else dict(self.tune_values)}


def _validate(model: type[BaseModel], values: Mapping[str, Any], where: str) -> BaseModel:
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        raise ParamsError(format_validation_error(exc, model, "params.yaml",
                                                  prefix=where)) from None


def entry_kind(task: str, name: str, entry: Mapping[str, Any]) -> str:
    """The kind a model entry names; a model named after a kind may leave ``kind`` out."""
    kind = entry.get("kind", name if (task, name) in _KINDS else None)
    if kind is None:
        raise ParamsError(f"params.yaml: train.{task}.variants.{name} needs a kind "
                          f"(one of {', '.join(sorted(kinds(task)))})")
    return kind


def resolve_model(task: str, name: str, train: Mapping[str, Any],
                  tune: Mapping[str, Any] | None = None) -> ModelSpec:
    """The spec of model ``name`` from the raw ``train.<task>`` and ``tune.<task>`` sections."""
    if name in RESERVED_NAMES:
        raise ParamsError(f"params.yaml: train.{task}.models: {name!r} is a reserved name "
                          f"({', '.join(RESERVED_NAMES)}); call the model something else")
    variants = train.get("variants") or {}
    entry = dict(variants.get(name) or {})
    kind = get_kind(task, entry_kind(task, name, entry))
    entry.pop("kind", None)
    defaults = (train.get("defaults") or {}).get(kind.group)
    if defaults is None:
        raise ParamsError(f"params.yaml: train.{task}.defaults.{kind.group} is missing "
                          f"(the defaults of kind {kind.name})")
    where = f"train.{task}.variants.{name}" if name in variants else \
        f"train.{task}.defaults.{kind.group}"
    params = _validate(kind.params, {**defaults, **entry}, where)
    if getattr(params, "bidirectional", False) and not kind.recurrent:
        raise ParamsError(f"params.yaml: {where}.bidirectional = True is invalid: kind "
                          f"{kind.name} is not recurrent")
    tune_spec = None
    if tune is not None:
        group = (tune.get("defaults") or {}).get(kind.group)
        override = (tune.get("models") or {}).get(name) or {}
        if group is not None or override:
            merged = {**(group or {}), **override}   # a model's entry replaces whole keys
            where = (f"tune.{task}.models.{name}" if override
                     else f"tune.{task}.defaults.{kind.group}")
            tune_spec = _validate(ModelTuneParams, merged, where)
            return ModelSpec(task, name, kind, params, tune_spec, merged)
    return ModelSpec(task, name, kind, params, None)


def resolve_models(task: str, train: Mapping[str, Any],
                   tune: Mapping[str, Any] | None = None) -> dict[str, ModelSpec]:
    """Every model of ``train.<task>.models``, resolved (in list order)."""
    names = list(train.get("models") or [])   # variants not listed are defined, not run
    return {name: resolve_model(task, name, train, tune) for name in names}


def load_spec(task: str, name: str, path: str = "params.yaml") -> ModelSpec:
    """Model ``name`` of ``task`` resolved straight from a params file (benchmarks, notebooks);
    the stages read the specs that stage ``resolve`` wrote instead."""
    from textrnn.config import read_params

    raw = read_params(path)                # with the dataset's profile, as the stages see it
    return resolve_model(task, name, raw["train"][task], raw.get("tune", {}).get(task))
