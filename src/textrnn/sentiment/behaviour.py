"""Behavioural tests of a sentiment model, in the spirit of CheckList (Ribeiro et al., ACL 2020).

The suite (``behaviour.yaml`` next to this module, package data) holds short, unambiguous
review-style sentences per capability, written for this project and read only by
evaluate_sentiment (never by a train or tune stage):

- ``negated_positive``: "The food was not fresh." is negative;
- ``negated_negative``: "The food was not bad at all." is positive;
- ``contrast``: "X, but Y" takes the label of Y;
- ``intensifier``: "absolutely delicious" / "extremely flimsy" keep their label;
- ``invariance``: pairs ``{a, b}`` of the same meaning (another name, other punctuation, a typo
  that keeps the meaning): both must get the same label, whichever it is.

A label capability holds ``{text, label}`` cases, a pair capability ``{a, b}`` cases (the keys of
its cases decide which). The suite is for binary sentiment: a model whose classes are not exactly
``negative`` and ``positive`` gets no rates (``{}``). No TensorFlow here: a model is any
``predict_proba(texts) -> (n, n_classes)`` in the order of ``classes``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from textrnn.errors import DataError

SUITE_FILE = Path(__file__).with_name("behaviour.yaml")
LABELS = ("negative", "positive")


@dataclass(frozen=True)
class LabelCase:
    """``text`` must be predicted as ``label``."""

    text: str
    label: str


@dataclass(frozen=True)
class PairCase:
    """``a`` and ``b`` mean the same: they must be predicted alike."""

    a: str
    b: str


Case = LabelCase | PairCase
Suite = dict[str, list[Case]]


@dataclass
class Behaviour:
    """Pass rates by capability, and the first failing cases of each (for the report).

    ``failures[capability]``: dicts with ``text``, ``expected``, ``predicted`` (label cases) or
    ``a``, ``predicted_a``, ``b``, ``predicted_b`` (pairs). Both are empty when the suite does not
    apply (the classes are not ``negative`` / ``positive``)."""

    rates: dict[str, float] = field(default_factory=dict)
    failures: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """``{capability: pass rate, ..., "mean": unweighted mean}``; ``{}`` if not applicable."""
        if not self.rates:
            return {}
        return {**self.rates, "mean": float(np.mean(list(self.rates.values())))}


def _case(path: Path, capability: str, index: int, raw: Any) -> Case:
    where = f"{path}: {capability}[{index}]"
    if not isinstance(raw, dict):
        raise DataError(f"{where}: expected a mapping {{text, label}} or {{a, b}}, got {raw!r}")
    keys = set(raw)
    if keys == {"text", "label"}:
        if raw["label"] not in LABELS:
            raise DataError(f"{where}: label {raw['label']!r} is not one of {list(LABELS)}")
        fields = ("text",)
    elif keys == {"a", "b"}:
        fields = ("a", "b")
    else:
        raise DataError(f"{where}: expected the keys text, label or a, b; got {sorted(keys)}")
    for key in fields:
        if not isinstance(raw[key], str) or not raw[key].strip():
            raise DataError(f"{where}: {key} must be a non-empty string, got {raw[key]!r}")
    if fields == ("a", "b") and raw["a"] == raw["b"]:
        raise DataError(f"{where}: a and b are the same text {raw['a']!r}")
    return LabelCase(raw["text"], raw["label"]) if "text" in keys else PairCase(raw["a"], raw["b"])


def load_suite(path: str | Path = SUITE_FILE) -> Suite:
    """The suite in ``path``: capability -> its cases, in file order. A malformed file raises one
    :class:`~textrnn.errors.DataError` naming the file and the case."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: behavioural test suite not found") from None
    except yaml.YAMLError as exc:
        raise DataError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(raw, dict) or not raw:
        raise DataError(f"{path}: expected a mapping capability -> list of cases")
    suite: Suite = {}
    for capability, cases in raw.items():
        if not isinstance(cases, list) or not cases:
            raise DataError(f"{path}: {capability}: expected a non-empty list of cases")
        parsed = [_case(path, str(capability), i, case) for i, case in enumerate(cases)]
        if len({type(case) for case in parsed}) > 1:
            raise DataError(f"{path}: {capability}: mixes {{text, label}} and {{a, b}} cases")
        suite[str(capability)] = parsed
    return suite


def case_texts(case: Case) -> tuple[str, ...]:
    """The sentences of a case: its text, or the two sides of a pair."""
    return (case.text,) if isinstance(case, LabelCase) else (case.a, case.b)


def suite_texts(suite: Suite) -> list[str]:
    """Every text of ``suite`` once, sorted: what :func:`behaviour_check` predicts."""
    return sorted({text for cases in suite.values() for case in cases
                   for text in case_texts(case)})


def applies_to(classes: Sequence[str]) -> bool:
    """Whether the suite fits a model with these classes (binary negative / positive)."""
    return sorted(classes) == sorted(LABELS)


def behaviour_check(predict_proba: Callable[[Sequence[str]], Any], classes: Sequence[str],
                    suite: Suite | None = None, *, max_failures: int = 3) -> Behaviour:
    """Run ``suite`` (default: the shipped one) through the model in one ``predict_proba`` call;
    keep up to ``max_failures`` failing cases per capability."""
    if not applies_to(classes):
        return Behaviour()
    suite = load_suite() if suite is None else suite
    texts = suite_texts(suite)
    proba = np.asarray(predict_proba(texts))
    if proba.shape != (len(texts), len(classes)):
        raise ValueError(f"predict_proba gave shape {proba.shape}, expected "
                         f"({len(texts)}, {len(classes)})")
    predicted = {text: classes[i] for text, i in zip(texts, proba.argmax(axis=1), strict=True)}
    result = Behaviour()
    for capability, cases in suite.items():
        passed = 0
        failures: list[dict[str, str]] = []
        for case in cases:
            if isinstance(case, LabelCase):
                ok = predicted[case.text] == case.label
                failure = {"text": case.text, "expected": case.label,
                           "predicted": predicted[case.text]}
            else:
                ok = predicted[case.a] == predicted[case.b]
                failure = {"a": case.a, "predicted_a": predicted[case.a],
                           "b": case.b, "predicted_b": predicted[case.b]}
            passed += ok
            if not ok and len(failures) < max_failures:
                failures.append(failure)
        result.rates[capability] = passed / len(cases)
        result.counts[capability] = len(cases)
        result.failures[capability] = failures
    return result


def behaviour_pass_rates(predict_proba: Callable[[Sequence[str]], Any], classes: Sequence[str],
                         suite: Suite | None = None) -> dict[str, float]:
    """``{capability: pass rate}`` of the model; ``{}`` when its classes are not exactly
    ``negative`` and ``positive`` (the suite is for binary sentiment)."""
    return behaviour_check(predict_proba, classes, suite).rates


def describe_failure(failure: Mapping[str, str]) -> str:
    """One line of Markdown for a failing case of :func:`behaviour_check`."""
    if "text" in failure:
        return (f"\"{failure['text']}\": expected {failure['expected']}, "
                f"got {failure['predicted']}")
    return (f"\"{failure['a']}\" -> {failure['predicted_a']}, but "
            f"\"{failure['b']}\" -> {failure['predicted_b']}")
