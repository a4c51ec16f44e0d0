"""params.yaml -> one validated schema. Each stage loads the sections it reads, nothing else.

A wrong type, an unknown key, an unknown name or an out-of-range value becomes a
:class:`ParamsError` whose message is one line naming the key path, the bad value and what is
allowed. Defaults live in params.yaml only: every field here is required.

Why one file of this length: it mirrors params.yaml section by section (data, fetch, preprocess,
split, embeddings, tracking, train, evaluate, tune), so the rules of any key are found where its
section is; the model kinds' own params classes sit here too because the kinds in
:mod:`textrnn.catalog` name them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)

from textrnn import datasets
from textrnn.errors import ParamsError
from textrnn.tuning.space import parse_dimension

PARAMS_FILE = "params.yaml"



def _declared_dataset(task: str) -> AfterValidator:
    """A dataset name of ``task``: one declared in :mod:`textrnn.datasets`, or custom."""
    def check(name: str) -> str:
        allowed = [repr(n) for n in datasets.names(task)]
        if name not in datasets.names(task):
            raise ValueError(f"Input should be {', '.join(allowed[:-1])} or {allowed[-1]}")
        return name
    return AfterValidator(check)


SentimentDataset = Annotated[str, _declared_dataset("sentiment")]
CharlmDataset = Annotated[str, _declared_dataset("charlm")]


class Section(BaseModel):
    """Base of every params section: unknown keys are errors, values are not coerced loosely."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# ----------------------------------------------------------------------------- data, fetch


class CustomTableParams(Section):
    """A user's labelled table, read when data.sentiment is 'custom'."""

    path: str                       # CSV, TSV or Parquet file: a path or an http(s) URL
    text_column: str = Field(min_length=1)
    label_column: str = Field(min_length=1)
    split_column: str | None        # optional column of train / val / test
    sep: Literal["auto", ",", "\t", ";", "|"]
    encoding: str = Field(min_length=1)
    quoting: Literal["minimal", "none"]
    on_empty: Literal["fail", "drop"]   # rows with an empty text or label
    max_megabytes: float = Field(gt=0)  # refuse bigger files up front


class CustomTextParams(Section):
    """A user's text file or folder of text files, read when data.charlm is 'custom'."""

    path: str
    encoding: str = Field(min_length=1)
    max_megabytes: float = Field(gt=0)


class CustomDataParams(Section):
    sentiment: CustomTableParams
    charlm: CustomTextParams


class DataParams(Section):
    sentiment: SentimentDataset
    charlm: CharlmDataset
    custom: CustomDataParams


class FetchParams(Section):
    timeout_s: float = Field(gt=0, le=3600)
    retries: int = Field(ge=0, le=20)


# ----------------------------------------------------------------------------- preprocess


class SentimentPreprocessParams(Section):
    strip_html: bool
    drop_duplicates: bool


class CharlmPreprocessParams(Section):
    lowercase: bool
    min_chars: int = Field(ge=1)


class PreprocessParams(Section):
    sentiment: SentimentPreprocessParams
    charlm: CharlmPreprocessParams


# ----------------------------------------------------------------------------- split


class Fractions(Section):
    train: float = Field(gt=0, lt=1)
    val: float = Field(gt=0, lt=1)
    test: float = Field(gt=0, lt=1)

    @model_validator(mode="after")
    def _sum_to_one(self) -> Fractions:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + val + test must add up to 1, got {total:g}")
        return self


class SentimentSplitParams(Fractions):
    # For datasets that ship their own test split (imdb): the share of upstream train kept for
    # validation. train/val/test above apply to datasets without one (uci).
    upstream_val_fraction: float = Field(gt=0, lt=1)


class SplitParams(Section):
    sentiment: SentimentSplitParams
    charlm: Fractions


# ----------------------------------------------------------------------------- embeddings


class EmbeddingsParams(Section):
    """Word vectors learned without labels (stage ``embed``) that start the sentiment networks."""

    corpus: Literal["imdb", "none"]     # imdb: the 50k IMDb reviews, labels unused
    unlabelled: bool = False            # imdb: also the 50k unlabelled reviews (train/unsup/)
    vocabulary: int = Field(ge=100, le=1_000_000)  # most frequent words given a vector
    dim: int = Field(ge=2, le=1000)
    window: int = Field(ge=1, le=20)    # context words on each side, weighted 1 / distance
    smoothing: float = Field(gt=0, le=1)  # context counts raised to this power


# ----------------------------------------------------------------------------- pretrain


class PretrainParams(Section):
    """Stage ``pretrain_lm``: a word-level LSTM language model on unlabelled reviews, which the
    ``lm_lstm`` sentiment kind fine-tunes (textrnn.wordlm)."""

    # imdb: the 100k IMDb reviews (train, test, unsup; labels unused); none: no language model
    # (the stage writes only meta.json; lm_lstm models then need pretrained: false)
    corpus: Literal["imdb", "none"]
    vocabulary: int = Field(ge=100, le=1_000_000)  # most frequent corpus words (+ task train words)
    embedding_dim: int = Field(ge=2, le=4096)      # = the output projection's (tied weights)
    # random: Keras' uniform start | pretrained: the embed stage's PPMI vectors, rows scaled to
    # pretrained_norm (words without a vector start random)
    # (defaults: what a language model saved before these keys existed was trained with)
    embedding_init: Literal["random", "pretrained"] = "random"
    pretrained_norm: float = Field(default=1.0, gt=0)
    units: int = Field(ge=1, le=4096)              # per LSTM layer
    layers: int = Field(ge=1, le=8)
    dropout: float = Field(ge=0, lt=1)             # on embeddings and between layers
    sampled: int = Field(ge=0)                     # sampled-softmax candidates; 0 = full softmax
    sequence_length: int = Field(ge=2, le=10000)   # tokens per window (truncated BPTT)
    batch_size: int = Field(ge=1, le=4096)         # parallel streams of the corpus
    learning_rate: float = Field(gt=0, le=1)
    # constant | linear: falls in a straight line from learning_rate to 0 over the budget
    schedule: Literal["constant", "linear"] = "constant"
    clipnorm: float = Field(ge=0)
    train_tokens: int = Field(ge=1)                # the budget: tokens predicted in training
    val_reviews: int = Field(ge=1)                 # held-out reviews for exact perplexity
    eval_every: int = Field(ge=1)                  # training steps between val perplexities


# ----------------------------------------------------------------------------- tracking


class TrackingParams(Section):
    uri: str = Field(min_length=1)  # e.g. sqlite:///mlflow.db or http://host:5000
    experiment: str = Field(min_length=1)


# ----------------------------------------------------------------------------- train

Optimizer = Literal["adam", "lazy_adam", "rmsprop", "sgd", "adamw"]
Activation = Literal["relu", "tanh", "gelu", "elu", "sigmoid"]
# LSTM layers: Keras' own (a loop over time on CPU, cuDNN on a GPU) or TensorFlow's fused CPU
# kernel (textrnn.layers.FusedLSTM; cuDNN on a GPU). docs/performance.md measures both.
Implementation = Literal["keras", "fused"]
# a model's name is a folder name and a DVC stage suffix: lower case, digits, underscores
ModelName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
# Raw values, checked against a kind's params class by textrnn.catalog (which knows the kinds)
RawValues = dict[str, Any]


class DummyParams(Section):
    strategy: Literal["prior", "most_frequent", "stratified", "uniform"]


class TfidfLogregParams(Section):
    ngram_max: int = Field(ge=1, le=5)     # word n-grams 1..ngram_max
    min_df: int = Field(ge=1)
    C: float = Field(gt=0)                 # inverse regularisation strength
    sublinear_tf: bool


class FitParams(Section):
    """How a Keras model is fitted: shared by every neural model of both tasks."""

    optimizer: Optimizer
    learning_rate: float = Field(gt=0, le=1)
    clipnorm: float = Field(ge=0)          # 0 turns gradient clipping off
    batch_size: int = Field(ge=1, le=4096)
    epochs: int = Field(ge=1, le=1000)
    patience: int = Field(ge=1)            # early stopping on val_loss, best weights restored
    # float16 compute, float32 weights (Keras' mixed_float16): for a GPU; refused without one
    mixed_precision: bool = False


class SentimentNeuralParams(FitParams):
    embedding_dim: int = Field(ge=1, le=4096)  # with embedding_init: pretrained, = embeddings.dim
    # pretrained: start from the embed stage's word vectors (scaled to length pretrained_norm)
    embedding_init: Literal["pretrained", "random"]
    pretrained_norm: float = Field(gt=0, le=1000)
    # with pretrained: words that have a vector but never occur in train get an id of their own
    vocabulary_from_vectors: bool
    units: int = Field(ge=1, le=4096)      # recurrent units per direction (dnn: dense width)
    layers: int = Field(ge=1, le=8)        # stacked recurrent layers (dnn: dense layers)
    bidirectional: bool                    # recurrent kinds: a second layer reads backwards
    dropout: float = Field(ge=0, lt=1)
    recurrent_dropout: float = Field(ge=0, lt=1)
    l2: float = Field(ge=0)
    dense_units: int = Field(ge=0, le=4096)  # hidden dense head before the softmax; 0 = none
    activation: Activation                 # of the dense head
    # how the (masked) sequence becomes one vector: last recurrent state, mean, or max+mean
    pooling: Literal["last", "mean", "max_mean"]
    # batches per call of the compiled train step: same results, less overhead per batch
    steps_per_execution: int = Field(ge=1, le=1024)
    # LSTM layers on CPU: Keras' loop, or TensorFlow's fused kernel (textrnn.layers.FusedLSTM)
    implementation: Implementation = "keras"


class TransferParams(FitParams):
    """Kind ``lm_lstm``: the pretrain_lm stage's language model fine-tuned into a classifier
    (textrnn.sentiment.transfer). Its embedding and LSTM sizes are the language model's."""

    optimizer: Literal["adam", "lazy_adam"]  # per-layer learning rates need Adam's update
    # false: the same network (the LM's vocabulary and sizes) from random weights, to compare
    pretrained: bool
    lm_epochs: int = Field(ge=0, le=100)   # LM fine-tuning passes over the task's train texts
    lm_learning_rate: float = Field(gt=0, le=1)
    dropout: float = Field(ge=0, lt=1)
    dense_units: int = Field(ge=0, le=4096)  # hidden dense head before the softmax; 0 = none
    activation: Activation
    pooling: Literal["last", "mean", "max_mean"]
    # gradual unfreezing: epochs the head trains alone, then each layer group below joins after
    # this many more epochs (top LSTM first, the embedding last); 0 = everything from the start
    unfreeze_every: int = Field(ge=0, le=100)
    lr_decay: float = Field(ge=1, le=100)    # each group below the head learns at lr / decay^depth
    steps_per_execution: int = Field(ge=1, le=1024)


class VectorizerParams(Section):
    max_tokens: int = Field(ge=10)         # vocabulary size, adapted on the training split only
    max_length: int = Field(ge=1)          # longer texts are truncated (tokens)


def _unique(names: list[str], key: str) -> None:
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{key} names {repeated} more than once")


class ModelsSection(Section):
    """The models of a task: which run, how each differs from its kind's defaults."""

    models: list[ModelName] = Field(min_length=1)   # trained, tuned and evaluated, in this order
    # name -> {kind: <kind>, <key>: <value>...}: only what differs from defaults.<kind's group>;
    # a model named after its kind needs no entry
    variants: dict[ModelName, RawValues]
    defaults: dict[str, RawValues]                   # per group of kinds (see textrnn.catalog)

    @model_validator(mode="after")
    def _names_once(self) -> ModelsSection:
        _unique(list(self.models), "models")
        return self


class EnsembleParams(Section):
    # trained neural models whose probabilities are averaged; [] = no ensemble
    members: list[ModelName]

    @model_validator(mode="after")
    def _two_or_none(self) -> EnsembleParams:
        if len(self.members) == 1 or len(set(self.members)) != len(self.members):
            raise ValueError("members must name two or more different models, or none ([])")
        return self


class SentimentTrainParams(ModelsSection):
    vectorizer: dict[SentimentDataset, VectorizerParams]
    ensemble: EnsembleParams

    @model_validator(mode="after")
    def _members_are_trained(self) -> SentimentTrainParams:
        missing = [m for m in self.ensemble.members if m not in self.models]
        if missing:
            raise ValueError(f"ensemble.members {missing} are not in models {self.models}: "
                             "an ensemble averages trained models only")
        return self


class CharlmNeuralParams(FitParams):
    embedding_dim: int = Field(ge=1, le=4096)
    units: int = Field(ge=1, le=4096)      # per recurrent layer
    layers: int = Field(ge=1, le=8)        # stacked recurrent layers
    dropout: float = Field(ge=0, lt=1)     # between layers (no recurrent dropout: slow on CPU)
    implementation: Implementation = "keras"   # as for sentiment networks
    # batches per epoch (validation after each); 0 = one pass over the training text
    steps_per_epoch: int = Field(ge=0)


class CharlmTrainParams(ModelsSection):
    sequence_length: int = Field(ge=2, le=10000)   # characters per training window


class TrainParams(Section):
    sentiment: SentimentTrainParams
    charlm: CharlmTrainParams


# ----------------------------------------------------------------------------- evaluate


class SentimentEvaluateParams(Section):
    bootstrap_samples: int = Field(ge=100, le=100000)  # resamples of the test rows per interval
    confidence: float = Field(gt=0.5, lt=1)            # of the bootstrap intervals
    # validation metric that picks the champion (log_loss: lowest wins; the others: highest)
    select_on: Literal["accuracy", "f1", "kappa", "roc_auc", "log_loss"]


CharlmStrategy = Literal["greedy", "beam", "stochastic_beam", "sample"]


class CharlmEvaluateParams(Section):
    """Sample texts written by evaluate_charlm for every model x strategy (x temperature)."""

    prompts: list[str] = Field(min_length=1)
    sample_length: int = Field(ge=1, le=10000)          # characters generated per sample
    strategies: list[CharlmStrategy] = Field(min_length=1)
    # sample and stochastic_beam run once per temperature; greedy and beam ignore it
    temperatures: list[Annotated[float, Field(gt=0, le=10)]] = Field(min_length=1)
    beam_width: int = Field(ge=1, le=64)                # beam and stochastic_beam
    top_k: int = Field(ge=0)                            # sample among the k most likely; 0 = all
    # sample: nucleus of this probability mass, after top_k; 0 < top_p <= 1, 1 = off
    top_p: float = Field(gt=0, le=1, allow_inf_nan=False)


class EvaluateParams(Section):
    sentiment: SentimentEvaluateParams
    charlm: CharlmEvaluateParams


# ----------------------------------------------------------------------------- tune

# A search-space entry: [choices] or {low, high, log, step}; see textrnn.tuning.space.
SpaceEntry = Annotated[Any, BeforeValidator(parse_dimension)]


class ModelTuneParams(Section):
    """How one model is tuned. With ``enabled: false`` the other keys may be left out."""

    enabled: bool
    sampler: Literal["grid", "random", "tpe"] | None = None
    pruner: Literal["none", "median", "hyperband"] | None = None
    n_trials: int | None = Field(default=None, ge=1, le=100000)  # budget: finished trials
    timeout_s: float | None = Field(default=None, ge=0)  # wall-time cap per run; 0 = none
    warmup_epochs: int | None = Field(default=None, ge=1)  # epochs before a trial can be pruned
    fixed: dict[str, str | int | float | bool] | None = None  # held during the search only
    space: dict[str, SpaceEntry] | None = None

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> ModelTuneParams:
        missing = [name for name, value in self if value is None]
        if self.enabled and missing:
            raise ValueError(f"tuning is enabled, so {', '.join(missing)} must be set")
        if self.enabled and not self.space:
            raise ValueError("tuning is enabled, so space needs at least one entry")
        return self


class TaskTuneParams(Section):
    # per group of kinds, as train.<task>.defaults: the settings every model of the group gets
    defaults: dict[str, RawValues]
    # per model name: keys that replace the group's (whole keys: a space given here replaces it)
    models: dict[ModelName, RawValues]


class SentimentTuneParams(TaskTuneParams):
    cv_folds: int = Field(ge=0, le=20)  # 0: score on the val split; k >= 2: k folds of train

    @model_validator(mode="after")
    def _folds(self) -> SentimentTuneParams:
        if self.cv_folds == 1:
            raise ValueError("cv_folds must be 0 (validation split) or at least 2")
        return self


class CharlmTuneParams(TaskTuneParams):
    pass


class TuneParams(Section):
    storage: str = Field(min_length=1)  # sqlite:///path or postgresql://user@host/db
    heartbeat_s: int = Field(ge=1)      # a trial silent 4x this long is failed and re-queued
    sentiment: SentimentTuneParams
    charlm: CharlmTuneParams


# ----------------------------------------------------------------------------- profiles


class TrainProfile(Section):
    """What a dataset profile changes in train.<task>: per group and per model, key by key."""

    defaults: dict[str, RawValues] = Field(default_factory=dict)
    variants: dict[ModelName, RawValues] = Field(default_factory=dict)


class TuneProfile(Section):
    """What a dataset profile changes in tune.<task>: per group and per model, key by key."""

    defaults: dict[str, RawValues] = Field(default_factory=dict)
    models: dict[ModelName, RawValues] = Field(default_factory=dict)


class DatasetProfile(Section):
    """The defaults that choosing a dataset chooses (``profiles.<task>.<dataset>``)."""

    train: TrainProfile = Field(default_factory=TrainProfile)
    tune: TuneProfile = Field(default_factory=TuneProfile)
    embeddings: RawValues = Field(default_factory=dict)   # sentiment only: the embed stage's keys
    pretrain: RawValues = Field(default_factory=dict)     # sentiment only: pretrain_lm's keys


class ProfilesParams(Section):
    sentiment: dict[SentimentDataset, DatasetProfile] = Field(default_factory=dict)
    charlm: dict[CharlmDataset, DatasetProfile] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _embeddings_are_sentiment_s(self) -> ProfilesParams:
        for dataset, profile in self.charlm.items():
            for section, what in (("embeddings", "the word vectors"),
                                  ("pretrain", "the word-level language model")):
                if getattr(profile, section):
                    raise ValueError(f"charlm.{dataset}.{section}: {what} belong to the "
                                     "sentiment task; set them in a sentiment profile")
        return self


def _overlay(base: Any, changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` (a mapping of groups or models) with each entry's keys replaced by ``changes``'
    (one level deep: a key such as ``fixed`` or ``space`` is replaced whole)."""
    merged = {name: dict(entry or {}) for name, entry in (base or {}).items()}
    for name, entry in changes.items():
        merged[name] = {**merged.get(name, {}), **(entry or {})}
    return merged


# what a profile may change: train.<task>.defaults / .variants, tune.<task>.defaults / .models,
# and (sentiment profiles) the embed and pretrain_lm stages' sections, key by key
_PROFILED = (("train", ("defaults", "variants")), ("tune", ("defaults", "models")))
_SENTIMENT_SECTIONS = ("embeddings", "pretrain")


def profile_changes(raw: dict[str, Any], task: str) -> list[tuple[str, Any]]:
    """The ``(key, value)`` pairs that task's active profile sets, as params.yaml paths of the
    keys they replace (for logs and docs); [] when the dataset has no profile."""
    dataset = (raw.get("data") or {}).get(task)
    profile = ((raw.get("profiles") or {}).get(task) or {}).get(dataset) or {}
    changes = []
    for section, parts in _PROFILED:
        for part in parts:
            for name, entry in ((profile.get(section) or {}).get(part) or {}).items():
                changes += [(f"{section}.{task}.{part}.{name}.{key}", value)
                            for key, value in (entry or {}).items()]
    changes += [(f"{section}.{key}", value) for section in _SENTIMENT_SECTIONS
                for key, value in (profile.get(section) or {}).items()]
    return changes


def apply_profiles(raw: dict[str, Any]) -> dict[str, Any]:
    """params.yaml as the stages see it: each task's ``train`` and ``tune`` sections (and, for
    sentiment, ``embeddings`` and ``pretrain``) with the profile of the task's dataset
    (``profiles.<task>.<data.<task>>``) laid over them.

    A profile replaces the keys it names and no other, so every other value of params.yaml (and
    of ``dvc exp run -S``) still applies; to change a value the profile sets, set it in the
    profile (``profiles.sentiment.imdb.train.defaults.network.epochs``). The file is not changed.
    """
    profiles = raw.get("profiles") or {}
    data = raw.get("data") or {}
    if not profiles or not isinstance(data, dict):
        return raw
    out = dict(raw)
    for task, by_dataset in profiles.items():
        profile = (by_dataset or {}).get(data.get(task)) if isinstance(by_dataset, dict) else None
        if not profile or not isinstance(profile, dict):
            continue
        for section, parts in _PROFILED:
            changes = profile.get(section) or {}
            if not changes or not isinstance(out.get(section), dict) \
                    or not isinstance(out[section].get(task), dict):
                continue
            task_section = dict(out[section][task])
            for part in parts:
                if changes.get(part):
                    task_section[part] = _overlay(task_section.get(part), changes[part])
            out[section] = {**out[section], task: task_section}
        for section in _SENTIMENT_SECTIONS:
            if profile.get(section) and isinstance(out.get(section), dict):
                out[section] = {**out[section], **profile[section]}
    return out


# ----------------------------------------------------------------------------- whole file


class Params(Section):
    seed: int = Field(ge=0, le=2**31 - 1)
    data: DataParams
    fetch: FetchParams
    preprocess: PreprocessParams
    split: SplitParams
    embeddings: EmbeddingsParams
    pretrain: PretrainParams
    tracking: TrackingParams
    train: TrainParams
    evaluate: EvaluateParams
    tune: TuneParams
    # chosen by data.<task>: see apply_profiles
    profiles: ProfilesParams = Field(default_factory=ProfilesParams)


def _key_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Walk the schema along ``loc`` (minus the bad key) and list the keys allowed there."""
    current: Any = model
    for part in loc[:-1]:
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        current = fields[part].annotation
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else []


def format_validation_error(exc: ValidationError, model: type[BaseModel], source: str,
                            prefix: str = "") -> str:
    """One readable line per problem (joined by '; '), naming key path, value and what is allowed.

    ``prefix``: the key path of what ``model`` validated (``train.sentiment.variants.lstm``).
    """
    parts = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = ".".join(filter(None, [prefix, _key_path(loc)])) or "<top level>"
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(model, loc)) or "none"
            parts.append(f"{key} is not a known key (allowed here: {allowed})")
        elif err["type"] == "missing":
            parts.append(f"{key} is missing")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            if isinstance(err["input"], dict) and len(repr(err["input"])) > 100:
                # a rule across the keys of a big section: the message names what matters
                parts.append(f"{key}: {msg}")
            else:
                parts.append(f"{key} = {err['input']!r} is invalid: {msg}")
    return f"{source}: " + "; ".join(parts)


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` as a float (YAML 1.2, as DVC reads it)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 (safe loader)
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    return raw


def load_params(*sections: str, path: str | os.PathLike = PARAMS_FILE) -> Params:
    """Validate the named top-level ``sections`` (all when none are named) and return them.

    Sections that the stage does not read are checked only for being known keys, so a stage is
    never stopped by a mistake in a section it does not depend on. The result is typed as
    :class:`Params` but carries only the sections asked for.
    """
    known = Params.model_fields
    for name in sections:
        if name not in known:  # a programming error, not a user error
            raise KeyError(f"unknown params section {name!r}")
    raw = read_params(path)
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ParamsError(
            f"{path}: {unknown[0]} is not a known key (allowed here: {', '.join(sorted(known))})"
        )
    wanted = list(sections) or list(known)
    partial = create_model(
        "Params", __base__=Section,
        **{name: (known[name].annotation, known[name]) for name in wanted}
    )
    try:
        return partial.model_validate({name: raw[name] for name in wanted if name in raw})
    except ValidationError as exc:
        raise ParamsError(format_validation_error(exc, partial, str(path))) from None


def _check_profiles(profiles: Any, path: str | os.PathLike) -> None:
    try:
        ProfilesParams.model_validate(profiles or {})
    except ValidationError as exc:
        raise ParamsError(format_validation_error(exc, ProfilesParams, str(path),
                                                  prefix="profiles")) from None


def read_params(path: str | os.PathLike = PARAMS_FILE) -> dict[str, Any]:
    """params.yaml's values with the active dataset profiles applied (:func:`apply_profiles`),
    unvalidated: for code that validates per model (textrnn.catalog)."""
    raw = read_yaml(path)
    if "profiles" in raw:   # checked before it is applied: a mistake names the profile's key
        _check_profiles(raw["profiles"], path)
    return apply_profiles(raw)
