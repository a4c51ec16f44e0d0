"""evaluate_charlm: exact perplexity of every charlm model, the champion, and sample texts.

-> metrics/charlm.json          per model: exact val and test perplexity, bits per character,
                                seconds per epoch, epochs, parameters
-> models/charlm/champion.json  the model with the lowest VALIDATION perplexity
-> reports/charlm_samples.md    every model x strategy (x temperature) x prompt
-> plots/charlm/curves.csv      every model's per-epoch history (column model), for DVC plots
Reads the models through their records (metrics/trained/charlm/). The test split is read here
only. Test metrics and samples are also logged to each model's MLflow training run.
"""

from __future__ import annotations

import logging
from typing import Any

from textrnn import paths, tracking
from textrnn.config import CharlmEvaluateParams, load_params
from textrnn.handoff import charlm_split, read_history, trained_model_dir, write_curves
from textrnn.io import write_json, write_text
from textrnn.stage import run

log = logging.getLogger(__name__)
STOCHASTIC = ("stochastic_beam", "sample")     # the strategies that take a temperature


def sample_plan(settings: CharlmEvaluateParams) -> list[tuple[str, float | None]]:
    """(strategy, temperature or None) pairs: one per temperature for the stochastic ones."""
    return [(strategy, temperature)
            for strategy in settings.strategies
            for temperature in (settings.temperatures if strategy in STOCHASTIC else [None])]


def write_samples(generator: Any, settings: CharlmEvaluateParams, seed: int) -> list[dict]:
    samples = []
    for prompt in settings.prompts:
        for strategy, temperature in sample_plan(settings):
            text = generator.generate(prompt, length=settings.sample_length, strategy=strategy,
                                      temperature=temperature or 1.0,
                                      beam_width=settings.beam_width, seed=seed,
                                      top_k=settings.top_k, top_p=settings.top_p)
            samples.append({"prompt": prompt, "strategy": strategy,
                            "temperature": temperature, "text": text})
    return samples


def samples_markdown(name: str, metrics: dict[str, Any], samples: list[dict], *,
                     settings: CharlmEvaluateParams, champion: bool) -> str:
    summary = (f"Test perplexity {metrics['test_perplexity']:.3f}, "
               f"{metrics['test_bits_per_char']:.3f} bits per character; validation perplexity "
               f"{metrics['val_perplexity']:.3f}.")
    lines = [f"## {name}{' (champion)' if champion else ''}", "", summary, ""]
    for sample in samples:
        how = sample["strategy"]
        if sample["strategy"] in ("beam", "stochastic_beam"):
            how += f", width {settings.beam_width}"
        if sample["temperature"] is not None:
            how += f", temperature {sample['temperature']:g}"
        if sample["strategy"] == "sample" and settings.top_k:
            how += f", top-{settings.top_k}"
        if sample["strategy"] == "sample" and settings.top_p != 1:
            how += f", top-p {settings.top_p:g}"
        # four backticks: the generated text cannot close the fence by accident
        lines += [f"**{how}**, prompt `{sample['prompt']}`:", "", "````text",
                  sample["prompt"] + sample["text"], "````", ""]
    return "\n".join(lines)


def log_to_training_run(run_id: str | None, name: str, metrics: dict[str, Any],
                        report: str) -> None:
    """Add test metrics and samples to the model's training run (a new run if it is gone)."""
    import mlflow

    try:
        context = mlflow.start_run(run_id=run_id) if run_id else None
    except Exception:  # noqa: BLE001 (a run from another tracking store)
        context = None
    if context is None:
        context = tracking.start_run(run_name=f"charlm/{name}", stage="evaluate_charlm",
                                     tags={"task": "charlm", "model": name})
    with context:
        mlflow.log_metrics({f"test/{k.removeprefix('test_')}": float(v)
                            for k, v in metrics.items() if k.startswith("test_")})
        mlflow.log_text(report, "charlm_samples.md")


def main() -> None:
    params = load_params("seed", "train", "evaluate", "tracking")
    names = list(params.train.charlm.models)
    settings = params.evaluate.charlm
    val_text, test_text = charlm_split("val"), charlm_split("test")

    from textrnn.charlm import train as charlm_train
    from textrnn.charlm.decoding import Generator
    from textrnn.seeding import seed_everything

    seed_everything(params.seed)
    results: dict[str, dict[str, Any]] = {}
    samples: dict[str, list[dict]] = {}
    run_ids: dict[str, str | None] = {}
    for name in names:
        model, vocab, meta = charlm_train.load(trained_model_dir("charlm", name))
        generator = Generator(model, vocab)
        val = charlm_train.exact_perplexity(generator.function,
                                            charlm_train.encode(val_text, vocab))
        test = charlm_train.exact_perplexity(generator.function,
                                             charlm_train.encode(test_text, vocab))
        results[name] = {
            "val_perplexity": val["perplexity"], "val_bits_per_char": val["bits_per_char"],
            "test_perplexity": test["perplexity"], "test_bits_per_char": test["bits_per_char"],
            "test_characters": test["characters"], "seconds_per_epoch": meta["seconds_per_epoch"],
            "epochs": meta["epochs"], "train_seconds": meta["train_seconds"],
            "parameters": int(model.count_params()),
        }
        samples[name] = write_samples(generator, settings, params.seed)
        run_ids[name] = meta.get("mlflow_run_id")
        log.info("%s: val perplexity %.3f, test perplexity %.3f (%.3f bits/char)", name,
                 val["perplexity"], test["perplexity"], test["bits_per_char"])

    champion = min(names, key=lambda name: results[name]["val_perplexity"])
    sections = {name: samples_markdown(name, results[name], samples[name], settings=settings,
                                       champion=name == champion)
                for name in names}
    nucleus = (f"`sample` keeps the nucleus of probability {settings.top_p:g} (top-p). "
               if settings.top_p != 1 else "")
    intro = (f"Written by `evaluate_charlm`: {settings.sample_length} characters after each "
             f"prompt (shown first), seed {params.seed}. Greedy and beam search are deterministic; "
             "`sample` draws each character from softmax(logits / temperature); `stochastic_beam` "
             "keeps beams drawn without replacement (Gumbel-top-k) and shows the most likely one. "
             f"{nucleus}Champion (lowest validation perplexity): **{champion}**.")
    report = "\n".join(["# Character-level language model: samples", "", intro, "",
                        *sections.values()])

    # Each row of `dvc metrics show` leads to its MLflow run.
    write_json("metrics/charlm.json",
               {n: {**r, "mlflow_run_id": run_ids[n]} for n, r in results.items()})
    write_curves(paths.curves_path("charlm"),
                 {name: read_history("charlm", name) for name in names})
    write_json(paths.champion_path("charlm"), {"model": champion, "selected_on": "val_perplexity",
                                              "value": results[champion]["val_perplexity"]})
    write_text("reports/charlm_samples.md", report)

    tracking.configure(params.tracking.uri, params.tracking.experiment)
    from textrnn import registry

    registry.set_champion("charlm", run_ids[champion], selected_on="val_perplexity",
                          value=results[champion]["val_perplexity"])
    for name in names:
        log_to_training_run(run_ids[name], name, results[name], sections[name])
    with tracking.start_run(run_name="charlm/evaluate", stage="evaluate_charlm",
                            params={"champion": champion, **settings.model_dump()},
                            tags={"task": "charlm"}):
        import mlflow

        mlflow.log_metrics({f"{name}/{key}": float(value) for name, metrics in results.items()
                            for key, value in metrics.items()})
        mlflow.log_text(report, "charlm_samples.md")
    print("evaluate_charlm: " + ", ".join(
        f"{name} test perplexity {results[name]['test_perplexity']:.3f}" for name in names)
        + f"; champion {champion}")


if __name__ == "__main__":
    run(main)
