"""Markdown reports a person can read on their own: tables of figures, then the images."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from textrnn.sentiment.behaviour import describe_failure


def _ci(entry: Mapping[str, Any], metric: str) -> str:
    value = entry[metric]
    low, high = entry.get("ci", {}).get(metric, (None, None))
    return f"{value:.3f} [{low:.3f}, {high:.3f}]" if low is not None else f"{value:.3f}"


def sentiment_markdown(
    *, dataset: str, results: Mapping[str, Mapping[str, Any]], champion: str, select_on: str,
    confidence: float, n_test: int, diagnostics: Mapping[str, Mapping[str, float]],
    images: Mapping[str, str], classes: Sequence[str], ensemble_members: Sequence[str] = (),
    behaviour_failures: Mapping[str, Sequence[Mapping[str, str]]] | None = None,
    behaviour_counts: Mapping[str, int] | None = None,
    mistakes: Sequence[Mapping[str, Any]] | None = None, explain_note: str | None = None,
    explain_seconds: float | None = None,
) -> str:
    """``results[model]``: test metrics with ``ci``, ``mcnemar_vs_champion``, ``accuracy_by_origin``
    and ``val``, and ``behaviour`` (pass rates by capability and their ``mean``; empty or absent
    when the suite does not apply); ``images``: caption -> path relative to the report;
    ``ensemble_members``: what the model ``ensemble`` averages; ``behaviour_failures``: the
    champion's failing behavioural cases by capability; ``behaviour_counts``: cases by
    capability; ``mistakes``: the champion's most confident test mistakes with ``tokens`` and
    their attribution ``scores`` (``explain_note``: why there are none; ``explain_seconds``: the
    time of one explanation)."""
    level = f"{confidence:.0%}"
    lines = [
        f"# Sentiment models on {dataset}",
        "",
        f"Champion: **{champion}**, chosen on the validation split by {select_on} "
        f"({results[champion]['val'][select_on]:.4f}); the service loads it. All other figures are "
        f"on the test split ({n_test} rows, classes {', '.join(classes)}), which no model saw "
        "while being trained or chosen.",
        "",
        f"## Test metrics ({level} bootstrap intervals in brackets)",
        "",
        "| model | accuracy | precision | recall | F1 | Cohen's kappa | ROC AUC | log loss "
        "| McNemar p vs champion | val accuracy |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in results.items():
        test = entry.get("mcnemar_vs_champion", {})
        p_value = "champion" if name == champion else (
            f"{test['p_value']:.3g} ({test['only_this_correct']}/{test['only_champion_correct']})")
        lines.append(
            f"| {name} | {_ci(entry, 'accuracy')} | {entry['precision']:.3f} | "
            f"{entry['recall']:.3f} | {_ci(entry, 'f1')} | {_ci(entry, 'kappa')} | "
            f"{entry['roc_auc']:.3f} | {entry['log_loss']:.3f} | {p_value} | "
            f"{entry['val']['accuracy']:.3f} |"
        )
    lines += [
        "",
        "McNemar's exact test compares each model with the champion on the same test rows; in "
        "brackets, the rows only that model got right / only the champion got right. With two "
        "classes, precision, recall and F1 are those of the class "
        f"`{classes[-1] if len(classes) == 2 else 'macro average'}`."
        + (f" `ensemble` is the mean of the probabilities of {', '.join(ensemble_members)} "
           "(nothing trained on top but one temperature, fitted on val like every model's)."
           if "ensemble" in results and ensemble_members else ""),
        "",
    ]
    origins = sorted({o for entry in results.values() for o in entry["accuracy_by_origin"]})
    if origins:
        lines += ["## Test accuracy by origin", "",
                  "| model | " + " | ".join(origins) + " |",
                  "|---|" + "---|" * len(origins)]
        for name, entry in results.items():
            by = entry["accuracy_by_origin"]
            lines.append(f"| {name} | " + " | ".join(f"{by.get(o, float('nan')):.3f}"
                                                     for o in origins) + " |")
        lines.append("")
    lines += _calibration_section(results, champion, level)
    lines += _behaviour_section(results, champion, classes, behaviour_failures or {},
                                behaviour_counts or {})
    lines += _mistakes_section(champion, results[champion].get("attributions"), mistakes or [],
                               explain_note, explain_seconds)
    if diagnostics:
        lines += [
            "## Training diagnostics", "",
            "Best epoch: lowest validation loss, whose weights are kept. Gap: train minus "
            "validation accuracy at the last epoch run (large = overfitting).", "",
            "| model | epochs run | best epoch | train - val accuracy | times val_loss rose "
            "| seconds / epoch |",
            "|---|---|---|---|---|---|",
        ]
        for name, d in diagnostics.items():
            lines.append(f"| {name} | {d['epochs']} | {d['best_epoch']} | {d['accuracy_gap']:+.3f} "
                         f"| {d['val_loss_rises']} | {d['seconds_per_epoch']:.2f} |")
        lines.append("")
    lines += ["## Plots", ""]
    for caption, path in images.items():
        lines += [f"### {caption}", "", f"![{caption}]({path})", ""]
    return "\n".join(lines)


def _mistakes_section(champion: str, completeness: Mapping[str, Any] | None,
                      mistakes: Sequence[Mapping[str, Any]], note: str | None,
                      seconds: float | None) -> list[str]:
    lines = ["## Why the champion errs: word attributions", ""]
    if note:
        return lines + [f"No attributions: {note}.", ""]
    lines += [
        f"The {len(mistakes)} test sentences {champion} gets wrong with the highest confidence, "
        "each word followed by its integrated-gradients attribution: how much it moved the "
        "log-odds of the predicted label (positive: towards it; the scores add up to the "
        "log-odds at the text minus those at an all-zero embedding). The strongest word is in "
        "bold.", ""]
    for m in mistakes:
        strongest = int(np.argmax(m["scores"])) if m["scores"] else -1
        words = " ".join(
            (f"**{token}**" if i == strongest else token) + f" ({score:+.2f})"
            for i, (token, score) in enumerate(zip(m["tokens"], m["scores"], strict=True)))
        lines.append(f"- \"{m['text']}\": {m['actual']}, predicted {m['predicted']} "
                     f"({m['probability']:.2f}). {words}")
    if completeness:
        lines += ["", f"Completeness on the first {completeness['sentences']} test sentences: "
                  f"|sum of attributions - (log-odds at the text - at the baseline)| at most "
                  f"{completeness['max_gap']:.4f}; {completeness['within_tolerance']:.0%} within "
                  f"the tolerance {completeness['tolerance']} (at most {completeness['steps']} "
                  "path points" + (f"; {1000 * seconds:.0f} ms per sentence here" if seconds
                                   else "") + ")."]
    return lines + [""]


def _calibration_section(results: Mapping[str, Mapping[str, Any]], champion: str,
                         level: str) -> list[str]:
    rows = {name: entry["calibration"] for name, entry in results.items()
            if entry.get("calibration")}
    if not rows:
        return []
    lines = [
        "## Calibration", "",
        "Each model ends in a temperature fitted on the validation split (temperature scaling: "
        "the logits divided by T; T > 1 softens over-confident probabilities). It never changes "
        "a prediction, so the accuracy above is the same with or without it. Expected "
        "calibration error (ECE, 15 equal-width confidence bins) and Brier score on test, "
        f"without and with the temperature ({level} bootstrap intervals; lower is better). The "
        "change is paired (the same resampled rows before and after): an interval wholly below "
        "0 is an improvement that is not noise. On a few hundred test rows ECE moves by a few "
        "hundredths between resamples.", "",
        "| model | T | ECE without | ECE with | ECE change | Brier without | Brier with |",
        "|---|---|---|---|---|---|---|",
    ]

    def cell(c: Mapping[str, Any], key: str) -> str:
        low, high = c[f"{key}_ci"]
        return f"{c[key]:.3f} [{low:.3f}, {high:.3f}]"

    for name, c in rows.items():
        label = f"**{name}**" if name == champion else name
        lines.append(f"| {label} | {c['temperature']:.2f} | {cell(c, 'ece_before')} | "
                     f"{cell(c, 'ece_after')} | {cell(c, 'ece_change')} | "
                     f"{cell(c, 'brier_before')} | "
                     f"{cell(c, 'brier_after')} |")
    return lines + [""]


def _behaviour_section(results: Mapping[str, Mapping[str, Any]], champion: str,
                       classes: Sequence[str],
                       failures: Mapping[str, Sequence[Mapping[str, str]]],
                       counts: Mapping[str, int]) -> list[str]:
    lines = ["## Behavioural tests", ""]
    rates = {name: entry.get("behaviour") or {} for name, entry in results.items()}
    capabilities = list(next((r for r in rates.values() if r), {}))
    if not capabilities:
        return lines + [f"Not run: the suite (src/textrnn/sentiment/behaviour.yaml) is for binary "
                        f"negative / positive sentiment; these models have the classes "
                        f"{', '.join(classes)}.", ""]
    sizes = ", ".join(f"{c} {counts[c]}" for c in capabilities if c in counts)
    lines += [
        "Pass rates on short sentences written for this project, never seen in training or "
        "tuning (src/textrnn/sentiment/behaviour.yaml"
        + (f"; cases: {sizes}" if sizes else "") + "). A label case passes when the model "
        "predicts its label; an invariance pair when both sentences get the same label. `mean` "
        "is the unweighted mean over capabilities.", "",
        "| model | " + " | ".join(capabilities) + " |",
        "|---|" + "---|" * len(capabilities),
    ]
    for name, by in rates.items():
        label = f"**{name}**" if name == champion else name
        lines.append(f"| {label} | " + " | ".join(
            f"{by[c]:.2f}" if c in by else "" for c in capabilities) + " |")
    lines.append("")
    shown = {c: f for c, f in failures.items() if f}
    if shown:
        lines += [f"Failing cases of the champion ({champion}), at most "
                  f"{max(len(f) for f in shown.values())} per capability:", ""]
        for capability, cases in shown.items():
            lines += [f"- {capability}: " + "; ".join(describe_failure(f) for f in cases)]
        lines.append("")
    return lines
