"""The behavioural test suite loads and is sound; pass rates are computed right; the report
shows them."""

from __future__ import annotations

import numpy as np
import pytest

from textrnn.errors import DataError
from textrnn.sentiment import behaviour
from textrnn.sentiment.behaviour import LabelCase, PairCase
from textrnn.sentiment.reports import sentiment_markdown

CLASSES = ["negative", "positive"]
CAPABILITIES = ["negated_positive", "negated_negative", "contrast", "intensifier", "invariance"]


def says_positive_iff_good(texts):
    """A fake model: positive (0.9) iff the word "good" is in the text, else negative."""
    positive = np.array([0.9 if "good" in t.lower().split() else 0.1 for t in texts])
    return np.stack([1 - positive, positive], axis=1)


TINY = {
    "negated_positive": [LabelCase("this is not good", "negative"),
                         LabelCase("this is not great", "negative"),
                         LabelCase("the food is not good at all", "negative")],
    "contrast": [LabelCase("slow but good", "positive"),
                 LabelCase("good but slow", "negative"),
                 LabelCase("nice but cold", "negative"),
                 LabelCase("bad but fine", "positive")],
    "invariance": [PairCase("good phone", "good phone !"),       # both positive: pass
                   PairCase("bad phone", "awful phone"),         # both negative: pass
                   PairCase("good film", "gud film")],           # positive / negative: fail
}


# ------------------------------------------------------------------------ the shipped suite


def test_the_shipped_suite_loads_with_enough_valid_cases():
    suite = behaviour.load_suite()
    assert list(suite) == CAPABILITIES
    for capability, cases in suite.items():
        assert len(cases) >= 20, capability
        kind = PairCase if capability == "invariance" else LabelCase
        assert all(isinstance(case, kind) for case in cases), capability
    assert {c.label for c in suite["negated_positive"]} == {"negative"}
    assert {c.label for c in suite["negated_negative"]} == {"positive"}
    for capability in ("contrast", "intensifier"):   # both labels, roughly balanced
        labels = [c.label for c in suite[capability]]
        assert abs(labels.count("positive") - labels.count("negative")) <= 2, capability
    assert all(" but " in c.text for c in suite["contrast"])


def test_the_shipped_suite_has_no_duplicate_text():
    texts = [text for cases in behaviour.load_suite().values() for case in cases
             for text in behaviour.case_texts(case)]
    duplicates = sorted({t for t in texts if texts.count(t) > 1})
    assert not duplicates
    # nor near-duplicates (case, punctuation) outside an invariance pair's two sides
    suite = behaviour.load_suite()
    labelled = [normal(c.text) for cases in suite.values() for c in cases
                if isinstance(c, LabelCase)]
    paired = {normal(t) for c in suite["invariance"] for t in (c.a, c.b)}
    assert len(set(labelled)) == len(labelled) and not set(labelled) & paired


def normal(text):
    return "".join(ch for ch in text.lower() if ch.isalnum() or ch == " ").strip()


def test_no_train_or_tune_stage_reads_the_suite():
    from conftest import ROOT

    for stage in ROOT.glob("stages/*.py"):
        if stage.stem != "evaluate_sentiment":
            assert "behaviour" not in stage.read_text(encoding="utf-8"), stage.name


# ------------------------------------------------------------------------ pass rates


def test_pass_rates_of_a_fake_model_are_the_hand_computed_ones():
    rates = behaviour.behaviour_pass_rates(says_positive_iff_good, CLASSES, TINY)
    # negated_positive: "not good" -> positive (fail), "not great" -> negative (pass),
    # "not good at all" -> positive (fail): 1/3
    # contrast: slow but good (pass), good but slow (fail), nice but cold (pass),
    # bad but fine (fail): 2/4
    # invariance: 2 of 3 pairs agree
    assert rates == pytest.approx({"negated_positive": 1 / 3, "contrast": 0.5, "invariance": 2 / 3})


def test_invariance_passes_only_when_both_labels_agree():
    pairs = {"invariance": [PairCase("good", "good phone"), PairCase("good", "bad"),
                            PairCase("bad", "good"), PairCase("bad", "worse")]}
    check = behaviour.behaviour_check(says_positive_iff_good, CLASSES, pairs)
    assert check.rates == {"invariance": 0.5}
    assert check.failures["invariance"] == [
        {"a": "good", "predicted_a": "positive", "b": "bad", "predicted_b": "negative"},
        {"a": "bad", "predicted_a": "negative", "b": "good", "predicted_b": "positive"}]


def test_the_check_keeps_a_few_failures_and_the_mean():
    check = behaviour.behaviour_check(says_positive_iff_good, CLASSES, TINY, max_failures=1)
    assert check.failures["negated_positive"] == [
        {"text": "this is not good", "expected": "negative", "predicted": "positive"}]
    assert all(len(f) <= 1 for f in check.failures.values())
    assert check.counts == {"negated_positive": 3, "contrast": 4, "invariance": 3}
    assert check.metrics()["mean"] == pytest.approx((1 / 3 + 0.5 + 2 / 3) / 3)


def test_class_order_is_respected():
    """A model whose classes are (positive, negative) is read in its own order."""
    def flipped(texts):
        return says_positive_iff_good(texts)[:, ::-1]

    assert (behaviour.behaviour_pass_rates(flipped, ["positive", "negative"], TINY)
            == behaviour.behaviour_pass_rates(says_positive_iff_good, CLASSES, TINY))


def test_the_shipped_suite_runs_in_one_call():
    calls = []

    def model(texts):
        calls.append(len(texts))
        return says_positive_iff_good(texts)

    rates = behaviour.behaviour_pass_rates(model, CLASSES)
    assert len(calls) == 1 and list(rates) == CAPABILITIES
    assert all(0.0 <= r <= 1.0 for r in rates.values())


def test_a_three_class_model_gets_no_rates():
    def three(texts):
        return np.full((len(texts), 3), 1 / 3)

    assert behaviour.behaviour_pass_rates(three, ["negative", "neutral", "positive"]) == {}
    assert behaviour.behaviour_check(three, ["a", "b", "c"]).metrics() == {}
    assert behaviour.behaviour_pass_rates(says_positive_iff_good, ["bad", "good"]) == {}


# ------------------------------------------------------------------------ malformed files


@pytest.mark.parametrize(("content", "message"), [
    ("negation:\n  - {text: fine, label: positive}\n  - {text: meh, label: neutral}\n",
     "negation[1]: label 'neutral' is not one of"),
    ("negation:\n  - {text: fine}\n", "negation[0]: expected the keys text, label or a, b"),
    ("invariance:\n  - {a: same, b: same}\n", "invariance[0]: a and b are the same text"),
    ("invariance:\n  - just a string\n", "invariance[0]: expected a mapping"),
    ("mixed:\n  - {text: fine, label: positive}\n  - {a: x, b: y}\n", "mixed: mixes"),
    ("negation:\n  - {text: '', label: positive}\n", "negation[0]: text must be a non-empty"),
    ("negation: []\n", "negation: expected a non-empty list"),
    ("- a list\n", "expected a mapping capability -> list of cases"),
    ("negation: [unclosed\n", "not valid YAML"),
])
def test_a_malformed_suite_is_one_clear_error(tmp_path, content, message):
    path = tmp_path / "suite.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as error:
        behaviour.load_suite(path)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)


def test_a_missing_suite_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        behaviour.load_suite(tmp_path / "nope.yaml")


# ------------------------------------------------------------------------ the report


def _report(classes, behaviour_by_model, failures=None):
    results = {}
    for name, rates in behaviour_by_model.items():
        results[name] = {"accuracy": 0.8, "precision": 0.8, "recall": 0.8, "f1": 0.8,
                         "kappa": 0.6, "roc_auc": 0.9, "log_loss": 0.4, "accuracy_by_origin": {},
                         "val": {"accuracy": 0.8}, "behaviour": rates,
                         "mcnemar_vs_champion": {"p_value": 0.5, "only_this_correct": 1,
                                                 "only_champion_correct": 2}}
    return sentiment_markdown(
        dataset="uci", results=results, champion="lstm", select_on="accuracy", confidence=0.95,
        n_test=10, diagnostics={}, images={}, classes=classes, behaviour_failures=failures,
        behaviour_counts={"negated_positive": 3, "contrast": 4, "invariance": 3})


def test_the_report_has_a_table_and_the_champions_failures():
    check = behaviour.behaviour_check(says_positive_iff_good, CLASSES, TINY)
    text = _report(CLASSES, {"dummy": {"negated_positive": 1.0, "contrast": 0.5,
                                       "invariance": 1.0, "mean": 0.833},
                             "lstm": check.metrics()}, check.failures)
    assert "## Behavioural tests" in text
    assert "| model | negated_positive | contrast | invariance | mean |" in text
    assert "| **lstm** | 0.33 | 0.50 | 0.67 | 0.50 |" in text
    assert "| dummy | 1.00 | 0.50 | 1.00 | 0.83 |" in text
    assert ('- negated_positive: "this is not good": expected negative, got positive' in text)
    assert '"good film" -> positive, but "gud film" -> negative' in text


def test_the_report_says_when_the_suite_does_not_apply():
    text = _report(["negative", "neutral", "positive"], {"lstm": {}})
    assert "Not run: the suite" in text and "negative, neutral, positive" in text
