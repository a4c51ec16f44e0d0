"""Why a neural sentiment model gave its label: word attributions by integrated gradients.

For one text with predicted class ``c`` the attributed function is the calibrated log-odds of
``c``, ``F = log p_c - log(1 - p_c)`` for the probabilities ``p`` the model returns (temperature
scaling included). It is computed from the logits ``z`` of the network's ``probs`` layer (its
kernel and bias applied to the layer's input), never from the log of a saturated softmax:
``F = z_c / T - logsumexp_{j != c}(z_j / T)``, which with two classes is ``(z_c - z_other) / T``,
the logit of the probability the service returns. An ensemble has no logits: its members'
log-probabilities are averaged in probability space (``logsumexp`` of the members' log-softmax
minus ``log M``, exact where clipping would saturate), then rescaled by the ensemble's own
temperature when it has one.

Integrated gradients (Sundararajan et al., ICML 2017) run over the output of the ``embedding``
layer: the baseline is an all-zero vector at every token position, with the same mask (the mask
comes from the token ids, so padding stays masked and a zero vector is still a word), and the
gradient of ``F`` is integrated along the straight path ``alpha * x``, ``alpha`` from 0 to 1. A
token's attribution is the sum over embedding dimensions of (embedding - baseline) times the
integrated gradient; by completeness the attributions add up to ``value - baseline_value``
(``F`` at the text minus ``F`` at the baseline), up to the quadrature error
:attr:`Explanation.completeness_gap`. For an ensemble the path runs jointly over all members'
embeddings (one alpha), and a token's score is the sum of its scores in every member.

The quadrature is adaptive, because the integrand is only piecewise smooth (max pooling, ReLU: the
gap of a fixed rule shrinks as 1 / steps) and some paths have a steep stretch (a simple RNN of an
earlier run: log-odds rising by 3.7 within 0.5 % of the path). [0, 1] starts as 21 equal segments
with two Gauss-Legendre nodes each (64 points, one batch); on every segment the exact integral is
known, the change of ``F`` across it, so each segment whose gap is over its share of the tolerance
is cut into 4, the worst first, until the segments' gaps add up to :data:`COMPLETENESS_TOLERANCE` or
``steps`` points have been used. Each text is explained alone (one batch per round), so a text gets
the same attributions alone and in a batch.

Measured on the pipeline's six saved UCI models (trained with early stopping, temperature-scaled;
the first 400 test sentences, 12.1 words on average; 2-core CPU, nice 19, 2026-12-05): the 99th
percentile and the largest |completeness gap| (log-odds), and the share of sentences within 0.05,
for a budget of ``steps`` points:

| model | 64 | 128 | 256 (default) | points used at 256: median, p99 | mean ms per sentence at 256 |
|---|---|---|---|---|---|
| lstm | 0.052, 0.080, 98.8 % | 0.030, 0.033, 100 % | 0.030, 0.033, 100 % | 64, 152 | 12 |
| gru | 0.059, 0.097, 97.8 % | 0.036, 0.042, 100 % | 0.036, 0.042, 100 % | 64, 119 | 7 |
| dnn | 0.026, 0.039, 100 % | 0.026, 0.039, 100 % | 0.026, 0.039, 100 % | 64, 64 | 3 |
| simple_rnn | 0.270, 1.73, 61.5 % | 0.129, 0.479, 96.8 % | 0.035, 0.070, 99.8 % | 141, 251 | 19 |
| bilstm | 0.089, 1.13, 95.0 % | 0.038, 0.049, 100 % | 0.037, 0.041, 100 % | 64, 240 | 15 |
| ensemble | 0.082, 0.393, 96.8 % | 0.033, 0.148, 99.8 % | 0.030, 0.043, 100 % | 64, 163 | 39 |

With a tolerance of 0.01 instead (200 sentences), the lstm needed a median of 196 points and the
ensemble (of the five) 251, 2 to 4 times the time, and some sentences still missed it at 256. Hence
:data:`DEFAULT_STEPS` 256 and :data:`COMPLETENESS_TOLERANCE` 0.05: all but one of the 2,400
explanations met it (a simple_rnn sentence: 0.070), most in the first 64 points, and 0.05 is under
1 % of a typical ``value - baseline_value`` (5 to 10).

Only the project's neural sentiment models are explained: ``text -> vectorizer -> network
[-> temperature]`` (:func:`textrnn.sentiment.models.end_to_end`), the network a chain of layers
from ``embedding`` to ``probs`` (:func:`~textrnn.sentiment.models.build_network`), and ensembles
of them (:func:`~textrnn.sentiment.models.ensemble`). Anything else (scikit-learn models, a
foreign Keras model) is a :class:`~textrnn.errors.UserError`.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from textrnn.errors import UserError
from textrnn.sentiment.text import tokens as split_tokens

if TYPE_CHECKING:
    import tensorflow as tf

DEFAULT_STEPS = 256
UNKNOWN_WORD = "[UNK]"          # the token shown for a text with no word (TextVectorization's)
MIN_STEPS = 4                 # one segment: its two ends and two Gauss-Legendre nodes
COMPLETENESS_TOLERANCE = 0.05
FIRST_SEGMENTS = 21           # equal segments of [0, 1] at first (64 points)
SPLIT = 4                     # a segment whose gap is too large is cut into this many
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(2)     # per segment, on [-1, 1]
# The vectorizer settings under which textrnn.sentiment.text.tokens splits a text exactly as the
# model does (make_vectorizer's: one word per token, no n-grams).
_VECTORIZER_SPLIT = {"standardize": "lower_and_strip_punctuation", "split": "whitespace",
                     "ngrams": None, "output_mode": "int"}
_NOT_EXPLAINED = ("only the project's neural sentiment models (text -> 'vectorizer' -> network "
                  "with an 'embedding' layer) and their ensembles can be explained")


@dataclass(frozen=True)
class Explanation:
    """The attributions of one text towards ``label``.

    ``tokens``: the words the model read (``textrnn.sentiment.text.tokens``, truncated to the
    vectorizer's ``output_sequence_length``; a text with no word, such as "!!!", reads as one
    unknown word, :data:`UNKNOWN_WORD`); ``scores``: one per token, > 0 pushes towards
    ``label``; ``value`` and ``baseline_value``: the attributed log-odds at the text and at the
    all-zero embedding.
    """

    tokens: list[str]
    scores: list[float]
    label: str
    value: float
    baseline_value: float

    @property
    def completeness_gap(self) -> float:
        """``sum(scores) - (value - baseline_value)``: 0 for exact integration."""
        return math.fsum(self.scores) - (self.value - self.baseline_value)


# ----------------------------------------------------------------------------- the model's parts
# Keras and TensorFlow are imported where they are used: the service's request schemas read this
# module's constants without loading them.


@dataclass(frozen=True)
class _Network:
    """One end-to-end model's vectorizer and network, cut at the embedding and at ``probs``."""

    vectorizer: Any                     # keras.layers.TextVectorization
    embedding: Any                      # keras.layers.Embedding
    chain: list[tuple[Any, bool]]       # the layers between them, in order; takes a mask
    probs: Any                          # keras.layers.Dense, softmax

    def log_probs(self, path: tf.Tensor, ids: tf.Tensor) -> tf.Tensor:
        """``path`` (k, time, dim) embeddings of ``ids`` (1, time) -> log-softmax of the logits
        (k, n_classes), the logits computed from ``probs``' kernel and bias."""
        import tensorflow as tf

        # The mask comes from the token ids, as the embedding's does: a zero vector stays a word.
        mask = tf.not_equal(tf.repeat(ids, tf.shape(path)[0], axis=0), 0)    # (k, time)
        x = path
        for layer, takes_mask in self.chain:          # mask passed on as a Keras graph does
            out = layer(x, mask=mask) if takes_mask else layer(x)            # inference mode
            mask = layer.compute_mask(x, mask) if layer.supports_masking else None
            x = out
        logits = tf.matmul(x, self.probs.kernel)                             # (k, n_classes)
        if self.probs.use_bias:
            logits += self.probs.bias
        return tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)


@dataclass(frozen=True)
class _Scaled:
    """A :class:`~textrnn.layers.Temperature` layer over ``inner``: ``log_softmax(L / T)``."""

    inner: Any
    temperature: float


@dataclass(frozen=True)
class _Mean:
    """``layers.Average`` of its members' probabilities: ``logsumexp(L_m) - log M``."""

    members: list[Any]


def _parse(model: Any, where: str) -> Any:
    """``model`` as a tree of :class:`_Network`, :class:`_Scaled` and :class:`_Mean`."""
    import keras

    from textrnn.layers import Temperature

    found = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    temperatures = [layer for layer in found if isinstance(layer, Temperature)]
    rest = found[:len(found) - len(temperatures)]
    if rest + temperatures != found:
        raise UserError(f"{where}: a 'temperature' layer is not at the end: {_NOT_EXPLAINED}")
    names = [layer.name for layer in rest]
    models = [layer for layer in rest if isinstance(layer, keras.Model)]
    if "vectorizer" in names:
        if len(rest) != 2 or len(models) != 1 or names[0] != "vectorizer":
            raise UserError(f"{where}: expected 'vectorizer' then one network, found {names}: "
                            f"{_NOT_EXPLAINED}")
        node: Any = _network(rest[0], models[0], f"{where}/{models[0].name}")
    elif rest and isinstance(rest[-1], keras.layers.Average) and len(models) == len(rest) - 1:
        node = _Mean([_parse(member, f"{where}/{member.name}") for member in models])
    elif len(rest) == 1 and models:
        node = _parse(models[0], f"{where}/{models[0].name}")
    else:
        raise UserError(f"{where} has no 'vectorizer' layer (layers: {names}): {_NOT_EXPLAINED}")
    for layer in temperatures:
        node = _Scaled(node, layer.temperature)
    return node


def _network(vectorizer: Any, network: Any, where: str) -> _Network:
    """Check the vectorizer splits as :func:`~textrnn.sentiment.text.tokens` and the network is
    a chain from ``embedding`` to ``probs``; return its parts."""
    import keras

    config = vectorizer.get_config()
    different = {key: config.get(key) for key, value in _VECTORIZER_SPLIT.items()
                 if config.get(key) != value}
    if not isinstance(vectorizer, keras.layers.TextVectorization) or different:
        raise UserError(f"{where}: the vectorizer does not split text into single words as "
                        f"textrnn.sentiment.text.tokens does ({different}): words cannot be named")
    names = [layer.name for layer in network.layers]
    if "embedding" not in names or "probs" not in names:
        raise UserError(f"{where} has no 'embedding' or no 'probs' layer: {_NOT_EXPLAINED}")
    embedding, probs = network.get_layer("embedding"), network.get_layer("probs")
    if (not isinstance(embedding, keras.layers.Embedding)
            or not isinstance(probs, keras.layers.Dense)
            or probs.activation is not keras.activations.softmax):
        raise UserError(f"{where}: 'embedding' must be an Embedding and 'probs' a Dense softmax "
                        f"layer: {_NOT_EXPLAINED}")
    chain = network.layers[names.index("embedding") + 1:names.index("probs")]
    previous = embedding
    for layer in [*chain, probs]:
        # A chain: each layer reads the previous one's output (and, for masked layers, the
        # boolean mask), nothing else; a branch or a skip connection fails here.
        try:
            inputs = [t for t in keras.tree.flatten(layer.input)
                      if keras.backend.standardize_dtype(t.dtype) != "bool"]
            linked = len(inputs) == 1 and inputs[0] is previous.output
        except (AttributeError, ValueError):       # a layer called more than once
            linked = False
        if not linked:
            raise UserError(f"{where}: layer {layer.name!r} does not read only the output of "
                            f"{previous.name!r}; only a chain of layers from 'embedding' to "
                            "'probs' can be explained")
        previous = layer
    masked = [(layer, "mask" in inspect.signature(layer.call).parameters) for layer in chain]
    return _Network(vectorizer, embedding, masked, probs)


def _leaves(node: Any) -> list[_Network]:
    if isinstance(node, _Network):
        return [node]
    if isinstance(node, _Scaled):
        return _leaves(node.inner)
    return [leaf for member in node.members for leaf in _leaves(member)]


def _evaluate(node: Any, logs: dict[int, tf.Tensor]) -> tf.Tensor:
    """Log-probabilities (k, n_classes) of ``node`` (up to a constant per row, for _Mean),
    from ``logs``: each leaf's log-softmax by its ``id``."""
    import tensorflow as tf

    if isinstance(node, _Network):
        return logs[id(node)]
    if isinstance(node, _Scaled):
        return tf.nn.log_softmax(_evaluate(node.inner, logs) / node.temperature, axis=-1)
    stacked = tf.stack([_evaluate(member, logs) for member in node.members])  # (M, k, n_classes)
    return tf.reduce_logsumexp(stacked, axis=0) - math.log(len(node.members))


# ----------------------------------------------------------------------------- attribution


class Explainer:
    """Integrated-gradients attributions for one model: parsed and traced once, reused.

    ``model``: a saved (or freshly built) end-to-end sentiment model or ensemble; ``classes``:
    its class names in output order. Raises :class:`~textrnn.errors.UserError` for a model it
    cannot explain. Thread-safe.
    """

    def __init__(self, model: Any, classes: Sequence[str]) -> None:
        import keras
        import tensorflow as tf

        from textrnn.layers import ensure_token

        if not isinstance(model, keras.Model):
            raise UserError(f"explanations need a neural (Keras) sentiment model, not "
                            f"{type(model).__name__}: scikit-learn models such as tfidf_logreg "
                            "and dummy are not explained")
        self.classes = list(classes)
        self._tree = _parse(model, model.name)
        self._leaves = _leaves(self._tree)
        units = {leaf.probs.units for leaf in self._leaves}
        if units != {len(self.classes)}:
            raise UserError(f"{model.name} outputs {sorted(units)} classes, but "
                            f"{len(self.classes)} class names were given: {self.classes}")
        signature = [tuple(tf.TensorSpec([1, None], tf.int32) for _ in self._leaves),
                     tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.int32)]
        self._rows = tf.function(self._rows_python, input_signature=signature, autograph=False)
        # Every leaf's token ids (n, length) in one graph call (eager calls cost ms each).
        self._vectorize = tf.function(
            lambda texts: tuple(tf.cast(ensure_token(leaf.vectorizer(texts)), tf.int32)
                                for leaf in self._leaves),
            input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)

    def __call__(self, texts: Sequence[str], *, steps: int = DEFAULT_STEPS,
                 tolerance: float = COMPLETENESS_TOLERANCE,
                 labels: Sequence[str] | None = None) -> list[Explanation]:
        """One :class:`Explanation` per text of ``texts``, in order, each computed alone.

        ``steps``: the most points of the path at which one text's gradients are computed
        (>= :data:`MIN_STEPS`; the cost grows with it); refinement stops once the segments' gaps
        add up to ``tolerance`` or less. ``labels``: the class to explain for each text, default
        the predicted one.
        """
        if steps < MIN_STEPS:
            raise UserError(f"steps must be >= {MIN_STEPS}, got {steps}")
        if labels is not None and len(labels) != len(texts):
            raise UserError(f"{len(labels)} labels for {len(texts)} texts")
        unknown = sorted(set(labels or ()) - set(self.classes))
        if unknown:
            raise UserError(f"labels {unknown} are not classes of the model ({self.classes})")
        import tensorflow as tf

        ids = [leaf_ids.numpy() for leaf_ids in                               # (n, length) each
               self._vectorize(tf.constant(list(texts), dtype=tf.string))]
        out = []
        for row, text in enumerate(texts):
            counts = [int(np.count_nonzero(leaf_ids[row])) for leaf_ids in ids]
            words = split_tokens(text)[:max(counts)]
            if not words and max(counts) == 1:     # no word: the model read one unknown word
                words = [UNKNOWN_WORD]                # (textrnn.layers.ensure_token)
            if len(words) != max(counts):
                raise RuntimeError(f"textrnn.sentiment.text.tokens found {len(words)} words in "
                                   f"{text!r}, the model's vectorizer {max(counts)}")
            # Padding cut off (masked anyway); one padding id left for a text with no word.
            cut = tuple(tf.constant(leaf_ids[row:row + 1, :max(count, 1)])
                        for leaf_ids, count in zip(ids, counts, strict=True))
            target = -1 if labels is None else self.classes.index(labels[row])
            path = _Path(functools.partial(self._evaluate_rows, cut, counts), target, len(words))
            scores = path.integrate(steps if words else 0, tolerance)
            out.append(Explanation(tokens=words, scores=scores.tolist(),
                                   label=self.classes[path.label], value=path.value(1.0),
                                   baseline_value=path.value(0.0)))
        return out

    def _evaluate_rows(self, ids: tuple[tf.Tensor, ...], counts: list[int], alphas: np.ndarray,
                       target: int) -> tuple[np.ndarray, int, np.ndarray]:
        """:meth:`_rows_python` at ``alphas`` (k,), the leaves' scores summed per word:
        ``(log-odds (k,), class, per-row scores (k, words))``."""
        import tensorflow as tf

        log_odds, label, leaf_scores = self._rows(ids, tf.constant(alphas, tf.float32),
                                                  tf.constant(target, tf.int32))
        scores = np.zeros((len(alphas), max(counts)))                        # (k, words)
        for one, count in zip(leaf_scores, counts, strict=True):
            scores[:, :count] += one.numpy()[:, :count]
        return log_odds.numpy().astype("float64"), int(label), scores

    def _rows_python(self, ids: tuple[tf.Tensor, ...], alphas: tf.Tensor,
                     target: tf.Tensor) -> tuple[Any, ...]:
        """The log-odds and their gradients at the points ``alphas`` (k,) of the path, one row
        each; ``target`` < 0 explains the class the model predicts at the largest alpha (1).

        Returns ``(log-odds (k,), the explained class, per leaf the per-row scores
        (k, time) = sum over dims of embedding x gradient)``.
        """
        import tensorflow as tf

        embedded = [tf.cast(leaf.embedding(leaf_ids), tf.float32)             # (1, time, dim)
                    for leaf, leaf_ids in zip(self._leaves, ids, strict=True)]
        paths = [alphas[:, None, None] * e for e in embedded]                 # (k, time, dim)
        with tf.GradientTape() as tape:
            tape.watch(paths)
            logs = {id(leaf): leaf.log_probs(path, leaf_ids)                   # (k, n_classes)
                    for leaf, path, leaf_ids in zip(self._leaves, paths, ids, strict=True)}
            log_probs = _evaluate(self._tree, logs)                           # (k, n_classes)
            predicted = tf.argmax(log_probs[tf.argmax(alphas)], output_type=tf.int32)
            label = tf.where(target >= 0, target, predicted)
            chosen = tf.one_hot(label, tf.shape(log_probs)[1], on_value=True, off_value=False)
            others = tf.where(chosen, tf.constant(-np.inf), log_probs)        # (k, n_classes)
            log_odds = log_probs[:, label] - tf.reduce_logsumexp(others, axis=-1)  # (k,)
        gradients = tape.gradient(log_odds, paths)        # rows are independent: (k, time, dim)
        scores = [tf.reduce_sum(e * g, axis=-1)                               # (k, time)
                  for e, g in zip(embedded, gradients, strict=True)]
        return log_odds, label, scores


def _split(a: float, b: float, parts: int) -> list[tuple[float, float]]:
    """[a, b] cut into ``parts`` equal segments."""
    edges = np.linspace(a, b, parts + 1).tolist()
    return list(zip(edges[:-1], edges[1:], strict=True))


class _Path:
    """Adaptive composite Gauss-Legendre quadrature of the path integral of one text.

    ``rows(alphas, target)`` evaluates the model at ``alphas``: ``(log-odds (k,), class,
    per-row scores (k, words))``. The segments of [0, 1] start equal; on each, the exact
    integral of the gradient is known (the log-odds at its ends differ by it), so the segments
    whose gap is over their share of the tolerance are cut into ``SPLIT``, the worst first, while
    steps are left.
    """

    def __init__(self, rows: Any, target: int, words: int) -> None:
        self._rows, self.label, self._words = rows, target, words
        self._log_odds: dict[float, float] = {}           # alpha -> F(alpha)
        self._scores: dict[float, np.ndarray] = {}        # alpha -> (words,) unweighted scores
        self.used = 0                                     # rows evaluated

    def value(self, alpha: float) -> float:
        return self._log_odds[alpha]

    def integrate(self, steps: int, tolerance: float) -> np.ndarray:
        """The attributions (words,); ``steps`` 0 only evaluates both ends (a text with no
        word)."""
        if steps == 0:
            self._evaluate([1.0, 0.0])
            return np.zeros(self._words)
        per_segment = _NODES.size + 1                         # its nodes and its upper end
        count = max(1, min(FIRST_SEGMENTS, (steps - 1) // per_segment))
        segments = _split(0.0, 1.0, count)
        self._evaluate([0.0, *self._points(segments)])
        while True:
            parts = {segment: self._segment(*segment) for segment in segments}
            gaps = {segment: abs(gap) for segment, (_, gap) in parts.items()}
            affordable = (steps - self.used) // (SPLIT * per_segment - 1)
            if sum(gaps.values()) <= tolerance or affordable == 0:
                return np.sum([scores for scores, _ in parts.values()], axis=0)
            share = tolerance / len(segments)
            worst = sorted((s for s in segments if gaps[s] > share), key=gaps.get,
                           reverse=True)[:affordable]
            pieces = [piece for a, b in worst for piece in _split(a, b, SPLIT)]
            self._evaluate([x for x in self._points(pieces) if x not in self._log_odds])
            segments = sorted(set(segments) - set(worst) | set(pieces))

    def _segment(self, a: float, b: float) -> tuple[np.ndarray, float]:
        """The integral of the scores over [a, b] (words,) and its gap to F(b) - F(a)."""
        nodes = a + (b - a) * (_NODES + 1) / 2
        integral = (b - a) / 2 * np.sum([w * self._scores[x] for w, x in
                                         zip(_WEIGHTS, nodes.tolist(), strict=True)], axis=0)
        return integral, float(np.sum(integral)) - (self._log_odds[b] - self._log_odds[a])

    @staticmethod
    def _points(segments: list[tuple[float, float]]) -> list[float]:
        """The Gauss-Legendre nodes and the upper end of each of ``segments``."""
        return [x for a, b in segments for x in [*(a + (b - a) * (_NODES + 1) / 2).tolist(), b]]

    def _evaluate(self, alphas: list[float]) -> None:
        log_odds, self.label, scores = self._rows(np.asarray(alphas), self.label)
        self.used += len(alphas)
        for alpha, value, row in zip(alphas, log_odds.tolist(), scores, strict=True):
            self._log_odds[alpha], self._scores[alpha] = value, row


def explain(model: Any, texts: Sequence[str], *, classes: Sequence[str],
            steps: int = DEFAULT_STEPS, tolerance: float = COMPLETENESS_TOLERANCE,
            labels: Sequence[str] | None = None) -> list[Explanation]:
    """One :class:`Explanation` per text: ``Explainer(model, classes)(texts, ...)``.

    Builds and traces an :class:`Explainer` on every call (a second or so); keep one to explain
    repeatedly.
    """
    return Explainer(model, classes)(texts, steps=steps, tolerance=tolerance, labels=labels)
