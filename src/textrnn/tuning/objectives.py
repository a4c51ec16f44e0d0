"""What one trial trains and how it is scored, per task. Never touches the test split.

- sentiment (neural): the model's network trained on bucketed batches exactly as the train stage
  trains it (same builder, optimizer, callbacks, seed), scored by validation accuracy at the
  epoch whose weights are kept (lowest val_loss, as the train stage keeps). Vectorizing is done
  once per study (once per fold), not once per trial. ``cv_folds >= 2`` scores the mean over k
  stratified folds of the training split instead.
- sentiment (scikit-learn): the kind's pipeline fitted on train, accuracy on val.
- charlm: validation perplexity, exp(mean cross-entropy per character), reported every epoch.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import optuna

from textrnn.tuning.keras_pruning import TrialReporter
from textrnn.tuning.space import validate_values


def trial_params(base: Any, params: Mapping[str, Any], fixed: Mapping[str, Any], *,
                 key: str) -> Any:
    """The model's params for one trial: params.yaml values, then ``fixed``, then the trial's."""
    return validate_values(base, {**fixed, **params}, where=key)


def best_kept_epoch(history: Mapping[str, Sequence[float]], monitor: str = "val_loss") -> int:
    """Index of the epoch whose weights ``training.fit`` keeps (lowest ``monitor``)."""
    values = list(history[monitor])
    return values.index(min(values))


@dataclass
class SentimentData:
    train_texts: list[str]
    train_labels: list[str]
    val_texts: list[str]
    val_labels: list[str]


@dataclass
class SentimentObjective:
    """``objective(trial, params) -> validation accuracy`` for one sentiment model."""

    model: str                # the model's name
    kind: Any                 # its textrnn.catalog.Kind
    base: Any                 # the model's SentimentNeuralParams / sklearn params from params.yaml
    vectorizer: Any           # VectorizerParams of the dataset
    data: SentimentData
    seed: int
    fixed: Mapping[str, Any]
    cv_folds: int = 0
    key: str = "tune"
    embeddings: Any = None    # WordVectors for models with embedding_init: pretrained

    @cached_property
    def classes(self) -> list[str]:
        return sorted(set(self.data.train_labels))

    @cached_property
    def folds(self) -> list[tuple[list[str], list[str], list[str], list[str]]]:
        """(train texts, train labels, val texts, val labels) per fold; one fold = the val split."""
        d = self.data
        if self.cv_folds < 2:
            return [(d.train_texts, d.train_labels, d.val_texts, d.val_labels)]
        from sklearn.model_selection import StratifiedKFold

        splitter = StratifiedKFold(n_splits=self.cv_folds, shuffle=True, random_state=self.seed)
        texts, labels = np.asarray(d.train_texts, dtype=object), np.asarray(d.train_labels)
        return [(list(texts[a]), list(labels[a]), list(texts[b]), list(labels[b]))
                for a, b in splitter.split(texts, labels)]

    @cached_property
    def encoded(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]]:
        """Per fold: train ids, train labels, val ids, val labels, vectorizer vocabulary."""
        from textrnn.sentiment.models import encode_labels, extra_words
        from textrnn.sentiment.text import make_vectorizer, vectorize

        out = []
        for train_texts, train_labels, val_texts, val_labels in self.folds:
            vec = make_vectorizer(train_texts, max_tokens=self.vectorizer.max_tokens,
                                  max_length=self.vectorizer.max_length,  # train part only
                                  extra_words=extra_words(self.base, self.embeddings))
            out.append((vectorize(vec, train_texts),
                        encode_labels(train_labels, self.classes, "train"),
                        vectorize(vec, val_texts), encode_labels(val_labels, self.classes, "val"),
                        list(vec.get_vocabulary())))
        return out

    def max_epochs(self, space_epochs: Sequence[int] = ()) -> int:
        """Longest a trial trains, in reported steps (all folds together)."""
        if not self.kind.neural:
            return 1
        epochs = max([int(self.fixed.get("epochs", self.base.epochs)), *space_epochs])
        return epochs * max(1, self.cv_folds)

    def __call__(self, trial: optuna.Trial, params: Mapping[str, Any]) -> float:
        p = trial_params(self.base, params, self.fixed, key=self.key)
        if not self.kind.neural:
            return self._sklearn(p)
        if self.kind.own_fit:
            scores = [self._fit_own(trial, p, fold) for fold in range(len(self.folds))]
            return float(np.mean(scores))
        scores = [self._fit_fold(trial, p, fold) for fold in range(len(self.folds))]
        return float(np.mean(scores))

    def _fit_fold(self, trial: optuna.Trial, p: Any, fold: int) -> float:
        from textrnn import training
        from textrnn.seeding import seed_everything
        from textrnn.sentiment.batching import bucketed_dataset
        from textrnn.sentiment.models import build_network, initialise_embedding

        train_ids, train_y, val_ids, val_y, vocabulary = self.encoded[fold]
        seed_everything(self.seed)  # every trial starts from the same state: reproducible alone
        network = build_network(self.kind, p, vocab_size=len(vocabulary),
                                n_classes=len(self.classes), key=self.key)
        initialise_embedding(network, self.key, p, vocabulary, self.embeddings, seed=self.seed)
        training.compile_model(network, p, loss="sparse_categorical_crossentropy",
                               metrics=["accuracy"], steps_per_execution=p.steps_per_execution)
        train_ds = bucketed_dataset(train_ids, train_y, batch_size=p.batch_size, shuffle=True,
                                    seed=self.seed)
        val_ds = bucketed_dataset(val_ids, val_y, batch_size=p.batch_size, shuffle=False,
                                  seed=self.seed)
        reporter = TrialReporter(trial, "val_accuracy", step_offset=fold * p.epochs)
        with tempfile.TemporaryDirectory(prefix="textrnn-trial-") as work_dir:
            history = training.fit(network, train_ds, val_ds, epochs=p.epochs, patience=p.patience,
                                   work_dir=work_dir, extra_callbacks=[reporter], verbose=0)
        if reporter.pruned:
            raise optuna.TrialPruned(f"pruned after epoch {len(history['val_accuracy'])}")
        return float(history["val_accuracy"][best_kept_epoch(history)])

    def _fit_own(self, trial: optuna.Trial, p: Any, fold: int) -> float:
        """A kind that trains itself (lm_lstm): its model's fit, the train stage's own path."""
        from textrnn.seeding import seed_everything

        train_texts, train_labels, val_texts, val_labels = self.folds[fold]
        seed_everything(self.seed)
        model = self.kind.build(p, vectorizer=self.vectorizer, embeddings=self.embeddings,
                                key=self.key)
        reporter = TrialReporter(trial, "val_accuracy", step_offset=fold * p.epochs)
        with tempfile.TemporaryDirectory(prefix="textrnn-trial-") as work_dir:
            history = model.fit(train_texts, train_labels, val_texts, val_labels, seed=self.seed,
                                work_dir=work_dir, verbose=0, callbacks=[reporter])
        if reporter.pruned:
            raise optuna.TrialPruned(f"pruned after epoch {len(history['val_accuracy'])}")
        return float(history["val_accuracy"][best_kept_epoch(history)])

    def _sklearn(self, p: Any) -> float:
        scores = []
        for train_texts, train_labels, val_texts, val_labels in self.folds:
            model = self.kind.build(p, vectorizer=self.vectorizer)
            with tempfile.TemporaryDirectory(prefix="textrnn-trial-") as work_dir:
                model.fit(train_texts, train_labels, val_texts, val_labels, seed=self.seed,
                          work_dir=work_dir, verbose=0)
            predicted = np.asarray(model.classes)[model.predict_proba(val_texts).argmax(axis=1)]
            scores.append(float(np.mean(predicted == np.asarray(val_labels))))
        return float(np.mean(scores))


def perplexity(mean_cross_entropy: float) -> float:
    """exp(mean negative log-likelihood per character); inf instead of an overflow."""
    return math.exp(mean_cross_entropy) if mean_cross_entropy < 700 else math.inf


ObjectiveFn = Callable[[optuna.Trial, Mapping[str, Any]], float]


@dataclass
class CharlmObjective:
    """``objective(trial, params) -> validation perplexity`` for one character-level LM.

    Trains through :func:`textrnn.charlm.train.fit_model` (the train stage's own path) and reports
    exp(val_loss) every epoch; ``fixed`` usually shortens epochs (``steps_per_epoch``) so a
    trial costs a fraction of a full training run.
    """

    model: str                # the model's name
    kind: Any                 # its textrnn.catalog.Kind
    base: Any                 # CharlmNeuralParams from params.yaml
    train_text: str
    val_text: str
    sequence_length: int
    seed: int
    fixed: Mapping[str, Any]
    key: str = "tune"

    @cached_property
    def encoded(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        from textrnn.charlm import train as charlm_train

        vocab = charlm_train.build_vocab(self.train_text)  # the training split only, as train does
        return (vocab, charlm_train.encode(self.train_text, vocab),
                charlm_train.encode(self.val_text, vocab))

    def max_epochs(self, space_epochs: Sequence[int] = ()) -> int:
        return max([int(self.fixed.get("epochs", self.base.epochs)), *space_epochs])

    def __call__(self, trial: optuna.Trial, params: Mapping[str, Any]) -> float:
        from textrnn.charlm import train as charlm_train
        from textrnn.seeding import seed_everything

        p = trial_params(self.base, params, self.fixed, key=self.key)
        vocab, train_ids, val_ids = self.encoded
        seed_everything(self.seed)
        reporter = TrialReporter(trial, "val_loss", transform=perplexity)
        with tempfile.TemporaryDirectory(prefix="textrnn-trial-") as work_dir:
            _, history = charlm_train.fit_model(
                self.kind, p, vocab_size=len(vocab), train_ids=train_ids, val_ids=val_ids,
                sequence_length=self.sequence_length, seed=self.seed, work_dir=work_dir,
                extra_callbacks=[reporter], verbose=0)
        if reporter.pruned:
            raise optuna.TrialPruned(f"pruned after epoch {len(history['val_loss'])}")
        return perplexity(min(history["val_loss"]))
