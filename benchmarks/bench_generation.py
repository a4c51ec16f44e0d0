"""Text generation speed: the stepped stateful decoder vs the naive loop, side by side.

    .venv/bin/python benchmarks/bench_generation.py [--model lstm] [--chars 1000] [--naive-chars 40]

The naive loop, as published student projects write it: for every new character, one
``model.predict`` over the last 100-character window (the whole window recomputed, a Keras
predict call per character). The decoders of :mod:`textrnn.charlm.decoding` prime the prompt once,
then make one compiled call per character with the recurrent state carried.

Uses the trained ``models/charlm/<model>/model`` when it exists (the champion's name when
``--model`` is not given); otherwise a freshly built, untrained network of the model as
params.yaml resolves it (a kind, or a variant) and a 92-character vocabulary: speed does not
depend on the weights. Prints characters per second of greedy, beam search (width 5), sampling
and the naive loop, and the greedy / naive ratio (targets: greedy >= 500 chars/s and >= 50x
naive). Run it on a quiet machine; `uptime` is printed so that a loaded one shows.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PROMPT = "En un lugar de la Mancha, de cuyo nombre no quiero acordarme, no ha mucho tiempo que "
WINDOW = 100


def load_or_build(name: str | None, models_dir: Path):
    from textrnn import paths
    from textrnn.catalog import load_spec
    from textrnn.charlm import train as charlm_train

    champion = paths.champion_path("charlm", models_dir)
    if name is None:
        name = json.loads(champion.read_text())["model"] if champion.is_file() else "lstm"
    directory = paths.model_dir("charlm", name, models_dir)
    if (directory / charlm_train.MODEL_FILE).is_file():
        model, vocab, _ = charlm_train.load(directory)
        return model, vocab, f"trained {name} ({directory})"
    spec = load_spec("charlm", name)
    # 92 characters with the unknown token
    vocab = charlm_train.build_vocab("".join(chr(c) for c in range(32, 32 + 91)))
    model = spec.kind.build(spec.params, vocab_size=len(vocab))
    return model, vocab, f"untrained {name} (no {directory}), shape of params.yaml"


def rate(chars: int, fn) -> float:
    started = time.perf_counter()
    fn()
    return chars / (time.perf_counter() - started)


def naive_generate(model, vocab, prompt: str, length: int) -> str:
    """One model.predict over the last WINDOW characters for every generated character."""
    import numpy as np

    from textrnn.charlm import train as charlm_train

    ids = list(charlm_train.encode(prompt, vocab))
    for _ in range(length):
        window = np.array([ids[-WINDOW:]], dtype="int32")
        logits = model.predict(window, verbose=0)[0, -1]           # (vocab,)
        logits[0] = -np.inf                                        # as the real decoders do
        ids.append(int(np.argmax(logits)))
    return charlm_train.decode(ids[-length:], vocab)


def main() -> None:
    from summary import emit

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None,
                        help="a charlm model of params.yaml, e.g. lstm (default: the champion)")
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--chars", type=int, default=1000, help="characters per decoder run")
    parser.add_argument("--naive-chars", type=int, default=40, help="characters of the naive loop")
    args = parser.parse_args()

    from textrnn.charlm.decoding import Generator

    model, vocab, source = load_or_build(args.model, args.models_dir)
    generator = Generator(model, vocab)
    # Warm-up: trace the compiled functions and Keras' predict function once each.
    generator.greedy(PROMPT, 5)
    generator.beam(PROMPT, 5, width=5)
    naive_generate(model, vocab, PROMPT, 2)

    n = args.chars
    rows = {
        "greedy": rate(n, lambda: generator.greedy(PROMPT, n)),
        "beam (width 5)": rate(n, lambda: generator.beam(PROMPT, n, width=5)),
        "sample (T=1.0)": rate(n, lambda: generator.sample(PROMPT, n, temperature=1.0, seed=0)),
        "naive predict loop": rate(args.naive_chars,
                                   lambda: naive_generate(model, vocab, PROMPT, args.naive_chars)),
    }
    # Same text both ways: the speed-up is not bought with a different result.
    same = naive_generate(model, vocab, PROMPT, 20) == generator.greedy(PROMPT, 20)
    ratio = rows["greedy"] / rows["naive predict loop"]
    print(f"model: {source}, {model.count_params():,} parameters, vocab {len(vocab)}")
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} "
          f"(1/5/15 min) on {os.cpu_count()} CPUs")
    for name, value in rows.items():
        print(f"  {name:<20} {value:9.1f} chars/s")
    print(f"greedy / naive: {ratio:.1f}x   (targets: greedy >= 500 chars/s, >= 50x naive)")
    print(f"greedy text identical to the naive loop's (20 chars): {same}")
    naive = rows["naive predict loop"]
    emit([{"benchmark": "generation", "what": f"{name}, {source}", "value": value,
           "unit": "chars/s", "naive": naive, "ratio": value / naive,
           "target": ">= 500 chars/s and >= 50x naive" if name == "greedy" else ""}
          for name, value in rows.items() if name != "naive predict loop"])


if __name__ == "__main__":
    main()
