"""Sentiment inference for the service: the saved model behind a compiled function, batched.

No ``model.predict`` per request (tens of milliseconds of Python set-up each time): the Keras model
is wrapped once in a ``tf.function`` with a fixed input signature, traced and warmed at start-up,
and concurrent requests are grouped into one call by :class:`MicroBatcher`. Word attributions
(:meth:`SentimentPredictor.explain`, :mod:`textrnn.sentiment.explain`) use the same loaded model,
traced at start-up too, and run per request on a worker thread, not through the batcher.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from textrnn.errors import UserError
from textrnn.sentiment.explain import MIN_STEPS, Explanation
from textrnn.serving.loading import ModelInfo

Probabilities = Callable[[list[str]], np.ndarray]   # texts -> (batch, n_classes)

WARM_UP_TEXTS = ["warm up", "a somewhat longer sentence to warm up the model with", "", "ñ é ü"]


@dataclass(frozen=True)
class SentimentPrediction:
    label: str                          # the most probable class
    probabilities: dict[str, float]     # class name -> probability, in the model's class order


class SentimentPredictor:
    """Class probabilities for raw texts from one saved sentiment model, and word attributions
    when the model is one of the project's neural models (``keras_model``). Thread-safe."""

    def __init__(self, info: ModelInfo, probabilities: Probabilities,
                 keras_model: object | None = None) -> None:
        self.info = info
        self.classes = list(info.classes)
        self._probabilities = probabilities
        self.keras_model = keras_model     # the loaded end-to-end Keras model; None for skops
        self._explainer = None
        # Why `explain` is refused (None when it works): one line for the 400 answer.
        self.explain_unavailable: str | None = (
            f"explanations need a neural (Keras) model; the loaded sentiment model "
            f"{info.name!r} is not one (scikit-learn models are not explained)"
            if keras_model is None else None)
        if keras_model is not None:
            from textrnn.sentiment.explain import Explainer

            try:
                self._explainer = Explainer(keras_model, self.classes)
            except UserError as exc:
                self.explain_unavailable = (f"the loaded sentiment model {info.name!r} cannot be "
                                            f"explained: {exc}")
        # The class a "positive probability" refers to: 'positive' when the model has one, else the
        # second class of a binary model (index 1 = the positive class, as scikit-learn counts);
        # a model with three or more classes has none, and callers read `probabilities`.
        if "positive" in self.classes:
            self.positive_class: str | None = "positive"
        else:
            self.positive_class = self.classes[1] if len(self.classes) == 2 else None

    @classmethod
    def load(cls, info: ModelInfo) -> SentimentPredictor:
        """Load models/sentiment/<name>/model/ (Keras in safe mode, or skops), check and warm it."""
        keras_file, skops_file = info.path / "model.keras", info.path / "model.skops"
        if keras_file.exists():
            model = load_keras(keras_file)
            predictor = cls(info, keras_probabilities(model), keras_model=model)
        elif skops_file.exists():
            predictor = cls(info, skops_probabilities(skops_file, info.classes))
        else:
            raise UserError(f"{info.path}: holds neither model.keras nor model.skops")
        predictor.warm_up()
        return predictor

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(batch, n_classes) float probabilities for ``texts``."""
        return self._probabilities(list(texts))

    def predict(self, texts: Sequence[str]) -> list[SentimentPrediction]:
        return self.describe(self.predict_proba(texts))

    def explain(self, texts: Sequence[str], *, steps: int,
                labels: Sequence[str] | None = None) -> list[Explanation]:
        """Word attributions of ``texts`` towards ``labels`` (default: the predicted ones), by
        integrated gradients on ``steps`` points at most per text; a UserError saying why when
        the model cannot be explained (:attr:`explain_unavailable`). Blocks: call it on a
        worker thread."""
        if self._explainer is None:
            raise UserError(self.explain_unavailable)
        return self._explainer(texts, steps=steps, labels=labels)

    def describe(self, probabilities: np.ndarray) -> list[SentimentPrediction]:
        """One :class:`SentimentPrediction` per row of ``probabilities``."""
        rows = probabilities.tolist()
        return [
            SentimentPrediction(
                label=self.classes[int(np.argmax(row))],
                probabilities=dict(zip(self.classes, row, strict=True)),
            )
            for row in rows
        ]

    def warm_up(self) -> None:
        """Run the model once per batch size met in service, and check its output contract."""
        for size in (1, len(WARM_UP_TEXTS)):
            try:
                probabilities = np.asarray(self.predict_proba(WARM_UP_TEXTS[:size]))
            except Exception as exc:  # noqa: BLE001 (any failure here means an unusable model)
                raise UserError(
                    f"{self.info.path}: the model fails on raw text input "
                    f"({type(exc).__name__}: {' '.join(str(exc).split())[:300]})"
                ) from None
            expected = (size, len(self.classes))
            if probabilities.shape != expected:
                raise UserError(
                    f"{self.info.path}: the model outputs shape {probabilities.shape} for {size} "
                    f"texts, expected {expected} (one probability per class of meta.json)"
                )
            if not np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-3):
                raise UserError(f"{self.info.path}: the model's outputs are not probabilities "
                                "(rows do not sum to 1; a softmax output is expected)")
        if self._explainer is not None:          # traced once: its signature takes any length
            self.explain(WARM_UP_TEXTS[:2], steps=MIN_STEPS)


def load_keras(path: Path) -> object:
    """The Keras model at ``path``, loaded in safe mode (a UserError naming the file if not)."""
    import keras

    import textrnn.layers  # noqa: F401 (registers the project's layers for safe loading)

    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # noqa: BLE001 (Keras raises many kinds: all mean 'unreadable')
        raise UserError(
            f"{path}: cannot load the model ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:300]})"
        ) from None


def keras_probabilities(model: object) -> Probabilities:
    """A compiled inference function over a loaded Keras ``model``."""
    import tensorflow as tf

    # The contract is (batch,) strings; a model built on Input(shape=(1,)) gets the column it wants.
    rank = len(model.inputs[0].shape) if getattr(model, "inputs", None) else 1

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)], reduce_retracing=True)
    def infer(texts: tf.Tensor) -> tf.Tensor:
        inputs = texts if rank == 1 else tf.expand_dims(texts, -1)   # (batch,) or (batch, 1)
        return model(inputs, training=False)                         # (batch, n_classes)

    def probabilities(texts: list[str]) -> np.ndarray:
        return infer(tf.constant(texts, dtype=tf.string)).numpy()

    return probabilities


def skops_probabilities(path: Path, classes: Sequence[str]) -> Probabilities:
    """``predict_proba`` of a scikit-learn pipeline, loaded trusting scikit-learn's own types
    only."""
    import skops.io as sio

    try:
        pipeline = sio.load(path)   # raises on any type outside skops' default trusted set
    except Exception as exc:  # noqa: BLE001
        raise UserError(
            f"{path}: cannot load the model ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:300]})"
        ) from None
    fitted = [str(c) for c in getattr(pipeline, "classes_", [])]
    if fitted == [str(i) for i in range(len(classes))]:
        order = list(range(len(classes)))  # fitted on class indices, in meta.json's class order
    elif sorted(fitted) == sorted(classes):
        order = [fitted.index(c) for c in classes]   # columns reordered to meta.json's order
    else:
        raise UserError(f"{path}: the model's classes {fitted} differ from meta.json's "
                        f"{list(classes)}")

    def probabilities(texts: list[str]) -> np.ndarray:
        return np.asarray(pipeline.predict_proba(texts), dtype=np.float64)[:, order]

    return probabilities


class _Stop:
    pass


@dataclass
class _Job:
    texts: list[str]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future


class MicroBatcher:
    """Runs the texts of concurrent requests through the model as one batch, on one thread.

    No timer: the worker takes everything queued while its previous batch ran (up to
    ``max_texts``), so a lone request goes straight through and batches grow with the load.
    """

    def __init__(self, probabilities: Probabilities, max_texts: int) -> None:
        self._probabilities = probabilities
        self._max_texts = max_texts
        self._queue: queue.SimpleQueue[_Job | _Stop] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def submit(self, texts: list[str]) -> np.ndarray:
        """(len(texts), n_classes) probabilities, computed in a batch with other callers' texts."""
        self._start()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put(_Job(texts, loop, future))
        return await future

    def _start(self) -> None:
        """Start the worker on first use (and again after :meth:`close`, as an app restarts)."""
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="sentiment-batcher",
                                                daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Stop the worker after the batches already queued."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                self._queue.put(_Stop())
                self._thread.join(timeout=10)
            self._thread = None

    def _work(self) -> None:
        carried: _Job | _Stop | None = None
        while True:
            first = carried if carried is not None else self._queue.get()
            carried = None
            if isinstance(first, _Stop):
                return
            jobs, size = [first], len(first.texts)
            while size < self._max_texts:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(job, _Stop) or size + len(job.texts) > self._max_texts:
                    carried = job        # starts the next batch (or stops after this one)
                    break
                jobs.append(job)
                size += len(job.texts)
            self._run(jobs)

    def _run(self, jobs: list[_Job]) -> None:
        try:
            probabilities = self._probabilities([text for job in jobs for text in job.texts])
        except Exception as exc:  # noqa: BLE001 (handed to every waiting request: a 500 each)
            for job in jobs:
                _resolve(job, exception=exc)
            return
        start = 0
        for job in jobs:
            _resolve(job, result=probabilities[start:start + len(job.texts)])
            start += len(job.texts)


def _resolve(job: _Job, result: np.ndarray | None = None,
             exception: Exception | None = None) -> None:
    def settle() -> None:
        if job.future.done():        # the client went away and the request was cancelled
            return
        if exception is not None:
            job.future.set_exception(exception)
        else:
            job.future.set_result(result)

    try:
        job.loop.call_soon_threadsafe(settle)
    except RuntimeError:             # its event loop is closed: nobody is waiting any more
        pass
