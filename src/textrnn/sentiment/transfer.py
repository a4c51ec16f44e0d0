"""Kind ``lm_lstm``: a sentiment classifier fine-tuned from a pretrained language model
(ULMFiT-style: Howard & Ruder 2018; Dai & Le 2015).

What one model of the kind does when it is fitted (the train and tune stages call ``fit``):

1. reads the word-level LSTM language model of stage ``pretrain_lm`` (``models/lm/``);
2. fine-tunes it as a language model on the task's training texts (``lm_epochs`` passes; the
   val texts only measure its perplexity, their labels are never read);
3. builds the classifier on its layers: the LM's vocabulary (a fixed TextVectorization, so raw
   strings go in), its embedding and LSTM layers (their weights), then pooling over the LSTM's
   states and a small head;
4. fine-tunes the classifier with **gradual unfreezing** and **discriminative learning rates**:
   the head trains alone for ``unfreeze_every`` epochs, then the top LSTM layer joins, then the
   next, the embedding last; each group below the head learns at ``learning_rate /
   lr_decay**depth``. Both are one optimizer (:class:`LayerwiseAdam`): a frozen group's learning
   rate is 0, so one compiled model trains through every phase and a killed run resumes.

``pretrained: false`` builds the same network from a random start (the ablation "no
pretraining"); ``lm_epochs: 0`` skips step 2 (the ablation "no LM fine-tuning").
The saved model is an ordinary end-to-end Keras model (vectorizer, network, temperature): the
service, the ensemble, explanations and MLflow take it like any other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
from keras import layers

from textrnn import training
from textrnn.config import TransferParams, VectorizerParams
from textrnn.errors import UserError
from textrnn.layers import EnsureToken, MaskedMaxMeanPooling, RowEmbedding
from textrnn.sentiment.models import KerasSentiment, _classes

LM_DIR = Path("models/lm")
HEAD = "head"                      # the group of every layer above the language model's


@keras.saving.register_keras_serializable(package="textrnn")
class LayerwiseAdam(training.LazyAdam):
    """LazyAdam whose learning rate is scaled per layer and held at 0 until the layer's epoch.

    ``schedule``: layer name -> ``[factor, first_epoch]``; a variable of a layer not named
    trains at the full rate from the start. The epoch comes from :class:`UnfreezeEpoch`. A
    frozen layer's moments still follow its gradients, so it starts with warm moments.
    ``lazy: false`` is Keras' Adam (every embedding row updated at every step).
    """

    def __init__(self, schedule: Mapping[str, Sequence[float]] | None = None, lazy: bool = True,
                 **kwargs: Any):
        super().__init__(**kwargs)
        self.schedule = {name: [float(factor), int(first)]
                         for name, (factor, first) in (schedule or {}).items()}
        self.lazy = lazy
        self.epoch = keras.Variable(0.0, trainable=False, name="unfreeze_epoch")

    def build(self, variables: Sequence[Any]) -> None:
        super().build(variables)
        # by variable index: update_step may see the backend's variable, which has no path
        self._layer_schedule = {self._get_variable_index(v): self.schedule[layer]
                                for v in variables
                                if (layer := v.path.split("/")[0]) in self.schedule}

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        import tensorflow as tf

        index = self._get_variable_index(variable)
        if index in self._layer_schedule:
            factor, first = self._layer_schedule[index]
            learning_rate = keras.ops.cast(learning_rate, variable.dtype) * keras.ops.cast(
                factor * keras.ops.cast(keras.ops.greater_equal(self.epoch, first), "float32"),
                variable.dtype)
        if not self.lazy and isinstance(gradient, tf.IndexedSlices):
            gradient = tf.convert_to_tensor(gradient)
        super().update_step(gradient, variable, learning_rate)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "schedule": self.schedule, "lazy": self.lazy}


class UnfreezeEpoch(keras.callbacks.Callback):
    """Tells :class:`LayerwiseAdam` which epoch runs (a resumed run included)."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.model.optimizer.epoch.assign(float(epoch))


def unfreeze_schedule(lm_layers: int, p: TransferParams) -> dict[str, list[float]]:
    """Layer name -> [learning-rate factor, first epoch] for the language model's layers.

    Depth 1 is the top LSTM layer, ``lm_layers`` the bottom one, ``lm_layers + 1`` the
    embedding: each learns at ``lr_decay ** -depth`` of the head's rate from epoch
    ``depth * unfreeze_every``.
    """
    names = [f"lm_lstm_{i}" for i in range(lm_layers, 0, -1)] + ["embedding"]
    return {name: [p.lr_decay ** -depth, depth * p.unfreeze_every]
            for depth, name in enumerate(names, start=1)}


def fixed_vectorizer(vocab: Sequence[str], max_length: int) -> layers.TextVectorization:
    """The language model's vocabulary as a TextVectorization (index 0 padding, 1 unknown):
    the same ids as :func:`textrnn.wordlm.encode`, truncated at ``max_length``."""
    return layers.TextVectorization(max_tokens=None, output_mode="int",
                                    output_sequence_length=max_length,
                                    vocabulary=list(vocab[2:]), name="vectorizer")


def build_classifier(lm: keras.Model | None, p: TransferParams, *, vocab_size: int,
                     embedding_dim: int, units: Sequence[int], n_classes: int,
                     key: str = "train.sentiment") -> keras.Model:
    """Token ids (batch, time) -> class probabilities, on the language model's layer sizes.

    With ``lm`` the embedding and LSTM layers start from its weights; with None from random.
    Layer names match the language model's (``embedding``, ``lm_lstm_<i>``), which the
    optimizer's schedule and the explanations (the ``embedding`` layer) rely on.
    """
    training.set_precision(p.mixed_precision, key=key)
    ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = EnsureToken(name="ensure_token")(ids)
    x = RowEmbedding(vocab_size, embedding_dim, mask_zero=True, name="embedding")(x)
    x = layers.Dropout(p.dropout, noise_shape=(None, 1, embedding_dim))(x)
    for index, size in enumerate(units, start=1):
        last = index == len(units)
        x = layers.LSTM(size, return_sequences=not (last and p.pooling == "last"),
                        name=f"lm_lstm_{index}")(x)
    if p.pooling == "max_mean":
        x = MaskedMaxMeanPooling(name="pooling")(x)
    elif p.pooling == "mean":
        x = layers.GlobalAveragePooling1D(name="pooling")(x)
    x = layers.Dropout(p.dropout)(x)
    if p.dense_units:
        x = layers.Dense(p.dense_units, activation=p.activation, name=HEAD)(x)
        x = layers.Dropout(p.dropout)(x)
    probs = layers.Dense(n_classes, activation="softmax", name="probs", dtype="float32")(x)
    network = keras.Model(ids, probs, name="lm_lstm_network")
    if lm is not None:
        network.get_layer("embedding").set_weights(lm.get_layer("embedding").get_weights())
        for index in range(1, len(units) + 1):
            name = f"lm_lstm_{index}"
            network.get_layer(name).set_weights(lm.get_layer(name).get_weights())
    return network


def lm_sizes(lm: keras.Model) -> tuple[int, int, list[int]]:
    """(vocabulary size, embedding dim, units of each LSTM layer) of a language model."""
    embedding = lm.get_layer("embedding")
    units, index = [], 1
    while any(layer.name == f"lm_lstm_{index}" for layer in lm.layers):
        units.append(lm.get_layer(f"lm_lstm_{index}").units)
        index += 1
    if not units:
        raise UserError("the language model has no layer lm_lstm_1: rerun `dvc repro pretrain_lm`")
    return embedding.input_dim, embedding.output_dim, units


class TransferSentiment(KerasSentiment):
    """A :class:`KerasSentiment` whose network comes from the pretrained language model."""

    def __init__(self, kind: Any, params: TransferParams, vectorizer: VectorizerParams,
                 lm_dir: Path = LM_DIR, key: str = "train.sentiment"):
        super().__init__(kind, params, vectorizer, key=key)
        self.lm_dir = Path(lm_dir)
        self.lm_history: list[dict[str, float]] = []

    @property
    def source_digest(self) -> str | None:
        """The language model's digest: a resumed run only reuses state made from the same."""
        if not self.params.pretrained:
            return None
        from textrnn.handoff import file_digest

        return file_digest(*sorted(path for path in self.lm_dir.glob("*") if path.is_file()))

    def _language_model(self) -> tuple[keras.Model, list[str], dict[str, Any]]:
        from textrnn import wordlm

        return wordlm.load(self.lm_dir)

    def _fine_tune_lm(self, lm: keras.Model, vocab: list[str], meta: dict[str, Any],
                      train_texts: Sequence[str], val_texts: Sequence[str], *, seed: int,
                      work_dir: Path, verbose: int) -> None:
        from textrnn import wordlm
        from textrnn.config import PretrainParams

        p = self.params
        train_ids = wordlm.encode(list(train_texts), vocab)
        val_ids = wordlm.encode(list(val_texts), vocab)
        base = PretrainParams.model_validate(meta["params"])
        steps_per_pass = max(1, len(train_ids) // (base.batch_size * base.sequence_length))
        lm_params = base.model_copy(update={
            "learning_rate": p.lm_learning_rate,
            "train_tokens": p.lm_epochs * max(len(train_ids), base.batch_size
                                              * base.sequence_length),
            "eval_every": max(1, steps_per_pass)})
        say = print if verbose else (lambda *args, **kwargs: None)
        self.lm_history = wordlm.train_lm(lm, train_ids, val_ids, params=lm_params, seed=seed,
                                          work_dir=work_dir / "lm_fine_tune", log=say)

    def fit(self, train_texts, train_labels, val_texts, val_labels, *, seed, work_dir,
            verbose=2, callbacks: Sequence[keras.callbacks.Callback] = ()
            ) -> dict[str, list[float]]:
        p = self.params
        work_dir = Path(work_dir)
        self.classes = _classes(train_labels)
        lm, vocab, meta = self._language_model()
        if p.pretrained and p.lm_epochs:
            self._fine_tune_lm(lm, vocab, meta, train_texts, val_texts, seed=seed,
                               work_dir=work_dir, verbose=verbose)
        vocab_size, embedding_dim, units = lm_sizes(lm)
        network = build_classifier(lm if p.pretrained else None, p, vocab_size=vocab_size,
                                   embedding_dim=embedding_dim, units=units,
                                   n_classes=len(self.classes), key=self.key)
        self.embedding_coverage = None
        clip = {"clipnorm": p.clipnorm} if p.clipnorm > 0 else {}
        optimizer = LayerwiseAdam(schedule=unfreeze_schedule(len(units), p),
                                  lazy=p.optimizer == "lazy_adam",
                                  learning_rate=p.learning_rate, **clip)
        network.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                        metrics=["accuracy"], steps_per_execution=p.steps_per_execution)
        vectorizer = fixed_vectorizer(vocab, self.vectorizer_params.max_length)
        return self._train(network, vectorizer, train_texts, train_labels, val_texts,
                           val_labels, seed=seed, work_dir=work_dir, verbose=verbose,
                           callbacks=[UnfreezeEpoch(), *callbacks])


def build_lm_classifier(kind: Any, params: TransferParams, *, vectorizer: VectorizerParams,
                        embeddings: Any = None, key: str = "train.sentiment",
                        lm_dir: Path = LM_DIR) -> TransferSentiment:
    """The builder of kind ``lm_lstm`` (catalog ``builder``); ``embeddings`` is not used (the
    language model brings its own)."""
    return TransferSentiment(kind, params, vectorizer, lm_dir=lm_dir, key=key)
