"""Sentiment models: one interface over scikit-learn pipelines and Keras networks.

Every model takes raw texts and string labels; the class order is ``sorted(train labels)``.
``kind.build(params, vectorizer=..., embeddings=..., key=...)`` (``kind`` from
:mod:`textrnn.catalog`, which names the builders below) returns an unfitted
:class:`SentimentModel` (``embeddings``: the embed stage's
:class:`~textrnn.sentiment.embeddings.WordVectors`, or None; ``key``: where params.yaml sets
the model);
:func:`load` reads a saved one back from its folder (``model.keras`` or ``model.skops``).

Why one file of this length: the scikit-learn and Keras families, the network builder, the
ensemble and the loader are the one interface the train, tune, ensemble and evaluate stages and
the service share; a change to how a model is saved or loaded is read in one place.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import keras
import numpy as np
from keras import layers

from textrnn import model_files, training
from textrnn.config import DummyParams, SentimentNeuralParams, TfidfLogregParams, VectorizerParams
from textrnn.errors import DataError, UserError
from textrnn.layers import (
    EnsureToken,
    MaskedMaxMeanPooling,
    RowEmbedding,
    Temperature,
    recurrent_stack,
)
from textrnn.sentiment.batching import bucketed_dataset
from textrnn.sentiment.text import make_vectorizer, vectorize

KERAS_FILE = "model.keras"
SKOPS_FILE = "model.skops"
PREDICT_BATCH = 256


class SentimentModel(Protocol):
    classes: list[str]

    def fit(self, train_texts: Sequence[str], train_labels: Sequence[str],
            val_texts: Sequence[str], val_labels: Sequence[str], *, seed: int,
            work_dir: Path, verbose: int = 2) -> dict[str, list[float]]: ...

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...  # (n, n_classes)

    def save(self, directory: Path) -> Path: ...

    def set_temperature(self, temperature: float) -> None: ...  # calibrated from now on


def encode_labels(labels: Sequence[str], classes: Sequence[str], split: str) -> np.ndarray:
    """String labels -> int32 indices into ``classes``; a label unseen in train is an error."""
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise DataError(f"{split} labels {unknown} do not occur in train "
                        f"(classes: {list(classes)})")
    return np.array([index[label] for label in labels], dtype="int32")


def _classes(train_labels: Sequence[str]) -> list[str]:
    classes = sorted(set(train_labels))
    if len(classes) < 2:
        raise DataError(f"train holds {len(classes)} class(es) {classes}; need at least 2")
    return classes


# ----------------------------------------------------------------------------- scikit-learn


class SklearnSentiment:
    """A scikit-learn estimator on raw texts, saved with skops (no pickle code execution)."""

    def __init__(self, estimator: Any, classes: list[str] | None = None):
        self.estimator = estimator
        self.classes = classes or []

    def fit(self, train_texts, train_labels, val_texts, val_labels, *, seed, work_dir,
            verbose=2) -> dict[str, list[float]]:
        self.classes = _classes(train_labels)
        self.estimator.set_params(**{k: seed for k in self.estimator.get_params()
                                     if k.endswith("random_state")})
        self.estimator.fit(np.asarray(train_texts, dtype=object),
                           encode_labels(train_labels, self.classes, "train"))
        return {}  # no epochs

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.estimator.predict_proba(np.asarray(texts, dtype=object)).astype("float64")

    def set_temperature(self, temperature: float) -> None:
        """Temperature scaling inside the estimator: a linear model's logits are its weights
        times the features, so dividing ``coef_`` and ``intercept_`` by ``temperature`` is
        exact (the saved file stays a plain scikit-learn pipeline). 1.0 changes nothing."""
        if temperature == 1.0:
            return
        final = self.estimator.steps[-1][1] if hasattr(self.estimator, "steps") else self.estimator
        if not (hasattr(final, "coef_") and hasattr(final, "intercept_")):
            raise UserError(f"{type(final).__name__} has no logits to scale; temperature "
                            f"{temperature} cannot be kept inside it")
        final.coef_ = final.coef_ / temperature
        final.intercept_ = final.intercept_ / temperature

    def save(self, directory: Path) -> Path:
        import skops.io

        path = Path(directory) / SKOPS_FILE
        skops.io.dump(self.estimator, path)
        return path


def build_dummy(kind: Any, params: DummyParams, **context: Any) -> SklearnSentiment:
    from sklearn.dummy import DummyClassifier

    return SklearnSentiment(DummyClassifier(strategy=params.strategy))


def build_tfidf_logreg(kind: Any, params: TfidfLogregParams, **context: Any) -> SklearnSentiment:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    return SklearnSentiment(Pipeline([
        ("tfidf", TfidfVectorizer(ngram_range=(1, params.ngram_max), min_df=params.min_df,
                                  sublinear_tf=params.sublinear_tf)),
        ("logreg", LogisticRegression(C=params.C, max_iter=2000)),
    ]))


# ----------------------------------------------------------------------------- Keras


def network_label(kind: Any, params: SentimentNeuralParams) -> str:
    """The name of a network's recurrent layers: the kind, ``bi`` in front when bidirectional."""
    return f"bi{kind.name}" if params.bidirectional else kind.name


def build_network(kind: Any, params: SentimentNeuralParams, *, vocab_size: int,
                  n_classes: int, key: str = "train.sentiment") -> keras.Model:
    """Token ids (batch, time), 0 = padding -> class probabilities (batch, n_classes).

    A kind with an ``encoder`` runs it between embedding and pooling; a kind with a recurrent
    ``cell``: a stack of recurrent layers of that cell; otherwise (dnn): per-token dense layers
    then pooling (a bag of embeddings). Padding is masked from the embedding on; a row with no
    token reads as one unknown word (:class:`~textrnn.layers.EnsureToken`), so no layer ever
    meets a fully masked row.
    """
    if not kind.recurrent and params.pooling == "last":
        raise UserError(f"{key}.pooling = 'last' needs a recurrent layer; "
                        "use 'mean' or 'max_mean'")
    label = network_label(kind, params)
    training.set_precision(params.mixed_precision, key=key)
    l2 = keras.regularizers.L2(params.l2) if params.l2 > 0 else None
    ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = EnsureToken(name="ensure_token")(ids)                           # (batch, time)
    x = RowEmbedding(vocab_size, params.embedding_dim, mask_zero=True,
                     embeddings_regularizer=l2, name="embedding")(x)    # (batch, time, emb)
    x = layers.Dropout(params.dropout, noise_shape=(None, 1, params.embedding_dim))(x)
    if kind.encoder:
        from textrnn.datasets import load_attribute

        x = load_attribute(kind.encoder)(x, params, label)
    elif not kind.recurrent:
        for index in range(params.layers):
            x = layers.Dense(params.units, activation=params.activation, kernel_regularizer=l2,
                             name=f"dense_{index + 1}")(x)                  # (batch, time, units)
    else:
        x = recurrent_stack(x, kind.cell, label=label, units=params.units,
                            layers_count=params.layers, bidirectional=params.bidirectional,
                            return_sequences=params.pooling != "last", dropout=params.dropout,
                            recurrent_dropout=params.recurrent_dropout, l2=params.l2,
                            implementation=params.implementation)
    if params.pooling == "max_mean":
        x = MaskedMaxMeanPooling(name="pooling")(x)                         # (batch, 2 * feats)
    elif params.pooling == "mean":
        x = layers.GlobalAveragePooling1D(name="pooling")(x)                # masked mean
    x = layers.Dropout(params.dropout)(x)
    if params.dense_units:
        x = layers.Dense(params.dense_units, activation=params.activation,
                         kernel_regularizer=l2, name="head")(x)
        x = layers.Dropout(params.dropout)(x)
    probs = layers.Dense(n_classes, activation="softmax", name="probs",    # (batch, n_classes)
                         dtype="float32")(x)           # float32 even under mixed precision
    return keras.Model(ids, probs, name=f"{label}_network")


def extra_words(params: SentimentNeuralParams, embeddings: Any) -> list[str]:
    """Words added to the train vocabulary: the pretrained vectors' words, when asked for."""
    if (embeddings is None or params.embedding_init != "pretrained"
            or not params.vocabulary_from_vectors):
        return []
    return embeddings.words


def initialise_embedding(network: keras.Model, key: str, params: SentimentNeuralParams,
                         vocabulary: Sequence[str], embeddings: Any, *, seed: int) -> float | None:
    """With ``embedding_init: pretrained``, start the embedding from ``embeddings``' vectors.

    Returns the share of the vectorizer's words that had a pretrained vector (None when the
    embedding starts random). ``vocabulary`` is the adapted vectorizer's, index 0 padding.
    """
    if params.embedding_init != "pretrained":
        return None
    if embeddings is None:
        raise UserError(f"{key}.embedding_init is 'pretrained' but no word "
                        "vectors were given: run `dvc repro embed`, or set it to 'random'")
    from textrnn.sentiment.embeddings import check_fits

    check_fits(embeddings, params, key)
    matrix, coverage = embeddings.initial_matrix(vocabulary, norm=params.pretrained_norm, seed=seed)
    network.get_layer("embedding").set_weights([matrix])
    return coverage


def end_to_end(vectorizer: layers.TextVectorization, network: keras.Model) -> keras.Model:
    """Raw strings (batch,) -> probabilities: the vectorizer adapted on train, then the network.

    The network goes in as an uncompiled view of its layers: the saved file holds no optimizer
    state (a third of the size) and loads without the optimizer's class.
    """
    text = keras.Input(shape=(), dtype="string", name="text")
    weights_only = keras.Model(network.inputs[0], network.outputs[0], name=network.name)
    return keras.Model(text, weights_only(vectorizer(text)), name="sentiment")


def with_temperature(model: keras.Model, temperature: float) -> keras.Model:
    """Raw strings (batch,) -> ``model``'s probabilities rescaled by ``temperature`` (a
    :class:`~textrnn.layers.Temperature` layer named ``temperature`` after its last layer, on
    the same graph: vectorizer, network [or the ensemble's members and mean], temperature)."""
    scaled = Temperature(temperature, name="temperature")(model.outputs[0])
    return keras.Model(model.inputs[0], scaled, name=model.name)


def ensemble(members: dict[str, keras.Model]) -> keras.Model:
    """Raw strings (batch,) -> the mean of the ``members``' probabilities (end-to-end models).

    One Keras file like any other model: the service and MLflow load it the same way.
    """
    text = keras.Input(shape=(), dtype="string", name="text")
    outputs = [keras.Model(model.inputs[0], model.outputs[0], name=name)(text)
               for name, model in members.items()]
    return keras.Model(text, layers.Average(name="mean_probabilities")(outputs), name="ensemble")


def predict_keras(model: keras.Model, texts: Sequence[str]) -> np.ndarray:
    """The one inference path for saved and freshly trained Keras models: (n, n_classes)."""
    out = [keras.ops.convert_to_numpy(model(np.asarray(texts[i:i + PREDICT_BATCH], dtype=object),
                                            training=False))
           for i in range(0, len(texts), PREDICT_BATCH)]
    return np.concatenate(out).astype("float64") if out else np.zeros((0, 0))


class KerasSentiment:
    """A network trained on bucketed token ids and exported with its vectorizer inside."""

    def __init__(self, kind: Any, params: SentimentNeuralParams, vectorizer: VectorizerParams,
                 embeddings: Any = None, model: keras.Model | None = None,
                 classes: list[str] | None = None, key: str = "train.sentiment"):
        self.kind, self.params, self.vectorizer_params = kind, params, vectorizer
        self.key = key
        self.embeddings = embeddings
        self.model, self.classes = model, classes or []
        self.embedding_coverage: float | None = None  # share of words with a pretrained vector

    def fit(self, train_texts, train_labels, val_texts, val_labels, *, seed, work_dir,
            verbose=2) -> dict[str, list[float]]:
        p = self.params
        self.classes = _classes(train_labels)
        vectorizer = make_vectorizer(list(train_texts),
                                     max_tokens=self.vectorizer_params.max_tokens,
                                     max_length=self.vectorizer_params.max_length,
                                     extra_words=extra_words(p, self.embeddings))
        network = build_network(self.kind, p, vocab_size=vectorizer.vocabulary_size(),
                                n_classes=len(self.classes), key=self.key)
        self.embedding_coverage = initialise_embedding(
            network, self.key, p, vectorizer.get_vocabulary(), self.embeddings, seed=seed)
        training.compile_model(network, p, loss="sparse_categorical_crossentropy",
                               metrics=["accuracy"], steps_per_execution=p.steps_per_execution)
        return self._train(network, vectorizer, train_texts, train_labels, val_texts,
                           val_labels, seed=seed, work_dir=work_dir, verbose=verbose)

    def _train(self, network: keras.Model, vectorizer: layers.TextVectorization,
               train_texts: Sequence[str], train_labels: Sequence[str],
               val_texts: Sequence[str], val_labels: Sequence[str], *, seed: int,
               work_dir: Path, verbose: int,
               callbacks: Sequence[keras.callbacks.Callback] = ()) -> dict[str, list[float]]:
        """Fit the compiled ``network`` on bucketed batches of the vectorized texts; the model
        becomes the vectorizer and the network end to end."""
        p = self.params
        train_ds = bucketed_dataset(vectorize(vectorizer, list(train_texts)),
                                    encode_labels(train_labels, self.classes, "train"),
                                    batch_size=p.batch_size, shuffle=True, seed=seed)
        val_ds = bucketed_dataset(vectorize(vectorizer, list(val_texts)),
                                  encode_labels(val_labels, self.classes, "val"),
                                  batch_size=p.batch_size, shuffle=False, seed=seed)
        history = training.fit(network, train_ds, val_ds, epochs=p.epochs, patience=p.patience,
                               work_dir=work_dir, verbose=verbose, extra_callbacks=callbacks)
        self.model = end_to_end(vectorizer, network)
        return history

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("fit or load the model first")
        return predict_keras(self.model, texts)

    def set_temperature(self, temperature: float) -> None:
        """End the exported model in a :class:`~textrnn.layers.Temperature` layer."""
        if self.model is None:
            raise RuntimeError("fit the model first")
        self.model = with_temperature(self.model, temperature)

    def save(self, directory: Path) -> Path:
        path = Path(directory) / KERAS_FILE
        self.model.save(path)
        return path


class LoadedSentiment:
    """A saved model read back: ``classes`` from meta.json and ``predict_proba`` on raw texts."""

    def __init__(self, predict: Any, classes: list[str], meta: dict[str, Any],
                 keras_model: keras.Model | None = None):
        self._predict, self.classes, self.meta = predict, classes, meta
        self.keras_model = keras_model   # the end-to-end Keras model; None for scikit-learn

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self._predict(list(texts))


def load(directory: str | Path) -> LoadedSentiment:
    """Load ``models/sentiment/<name>/model/``: Keras in safe mode, skops trusting no extra type."""
    directory = Path(directory)
    checked = model_files.read_meta(directory, task="sentiment")
    meta, classes = checked.as_dict(), list(checked.classes or ())
    if (directory / KERAS_FILE).is_file():
        model = keras.saving.load_model(directory / KERAS_FILE, safe_mode=True)
        return LoadedSentiment(functools.partial(predict_keras, model), classes, meta,
                               keras_model=model)
    if (directory / SKOPS_FILE).is_file():
        import skops.io

        try:
            estimator = skops.io.load(directory / SKOPS_FILE, trusted=[])
        except Exception as exc:  # noqa: BLE001 (skops raises TypeError for untrusted types)
            raise UserError(f"{directory / SKOPS_FILE} cannot be loaded safely: {exc}") from None
        return LoadedSentiment(SklearnSentiment(estimator).predict_proba, classes, meta)
    raise UserError(f"{directory} holds neither {KERAS_FILE} nor {SKOPS_FILE}")


def load_all(directories: Mapping[str, Path]) -> dict[str, LoadedSentiment]:
    """``load`` each model of ``{name: folder}``; one clear error when they were not
    trained on the same classes and dataset (they could not be compared or averaged)."""
    models = {name: load(directory) for name, directory in directories.items()}
    names = list(models)
    first = names[0]
    wanted = (models[first].classes, models[first].meta.get("dataset"))
    for name, model in models.items():
        found = (model.classes, model.meta.get("dataset"))
        if found != wanted:
            raise DataError(f"{directories[name]} was trained on {found[1]} classes {found[0]}, "
                            f"{first} on {wanted[1]} {wanted[0]}: run `dvc repro train_sentiment` "
                            "so that every model is trained on the same split")
    return models


def build_keras(kind: Any, params: SentimentNeuralParams, *, vectorizer: VectorizerParams,
                embeddings: Any = None, key: str = "train.sentiment") -> KerasSentiment:
    """The builder of every neural kind (catalog ``builder``): an unfitted
    :class:`KerasSentiment`."""
    return KerasSentiment(kind, params, vectorizer, embeddings=embeddings, key=key)
