"""The GPU check: everything a first run on a GPU machine must show, in one script of a few
minutes, that runs on a CPU too.

    python benchmarks/gpu_check.py [--quick] [--rows N] [--lm-steps N]
                                   [--implementation keras|fused] [--json PATH]

One line per check, then a summary table; exit 0 when every check that ran passed, else 1.

1. device: TensorFlow and Keras versions, the GPU TensorFlow sees (if any), the CPU.
2. sentiment <kind>: one epoch of simple_rnn, lstm, gru and bilstm on the UCI training split
   (all of it, or a stratified ``--rows``) with texts that standardise to nothing ("", "!!!",
   "...", blanks) added to train and val; params.yaml's network defaults with epochs 1 and a
   random embedding (no embed stage needed). Seconds of the epoch (tracing included), texts/s,
   the kernel of each recurrent layer (:func:`textrnn.layers.recurrent_kernels`), and the
   model's probabilities for the empty texts.
3. cudnn (GPU only): the inference graphs of the lstm, gru and bilstm models hold cuDNN's op.
4. service: the trained lstm saved as the train stage saves it, the service started on it
   (load and warm-up, "" among the warm-up texts) and one batch POSTed over HTTP with
   punctuation-only texts; "" itself must be refused (400 empty_text, the API's contract).
5. charlm: one language-model epoch of ``--lm-steps`` batches on Don Quijote (params.yaml's
   defaults otherwise): seconds, characters/s, kernel.
6. mixed precision (GPU only): the lstm epoch and the language-model epoch again with
   ``mixed_precision: true``.
7. determinism: one lazy_adam training step with op determinism on, in a child process
   (determinism is process-wide and would slow the other checks): it ran, or TensorFlow's error.

Raw data comes from $TEXTRNN_DATA_MIRROR (the fetch stage's mirror), else data/raw/ (fetch),
else data/processed/ (preprocess) when params.yaml's dataset is the one needed. Nothing outside
a temporary folder is written, except ``--json``. docs/gpu.md says what the lines mean.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow takes a GPU's whole memory by default; the determinism check's child process needs
# some while this one holds its models (the child inherits this too).
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"
NO_GPU = "skipped: no GPU"
KINDS = {  # model -> its entry, as params.yaml's train.sentiment.variants would spell it
    "simple_rnn": {}, "lstm": {}, "gru": {}, "bilstm": {"kind": "lstm", "bidirectional": True},
}
LM_KIND = "lstm"
# Texts with no token once standardised: a row the recurrent kernels see fully masked.
EMPTY_TEXTS = ["", "!!!", "...", "  ", "?!", "--"]
# What the service is sent: real sentences and texts that standardise to nothing but are not
# blank (a blank text is refused by the API's contract, checked on its own).
SERVICE_TEXTS = ["A wonderful phone, the battery lasts for days.", "!!!", "...",
                 "The food was cold and the service slow.", "?!", "Not bad at all."]
QUICK = {"rows": 300, "lm_steps": 4}
DEFAULTS = {"rows": 0, "lm_steps": 30}


@dataclass
class Check:
    name: str
    status: str = "ok"                 # ok | failed | skipped: no GPU
    line: str = ""                     # what a reader needs, one line
    seconds: float | None = None
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status != "failed"


def show(check: Check) -> Check:
    label = {"ok": "ok", "failed": "FAILED"}.get(check.status, check.status)
    print(f"{check.name:<20} [{label}] {check.line}", flush=True)
    return check


def run_check(name: str, body: Callable[[Check], None]) -> Check:
    """``body(check)`` fills in the check; an exception fails it, its message in the line."""
    check = Check(name)
    start = time.perf_counter()
    try:
        body(check)
    except Exception as exc:  # noqa: BLE001 (any error is this check's finding, not the run's end)
        check.status = "failed"
        check.line = (f"{check.line}; " if check.line else "") + _error(exc)
        check.figures["traceback"] = traceback.format_exc()
    if check.seconds is None:
        check.seconds = time.perf_counter() - start
    return show(check)


def skipped(name: str) -> Check:
    return show(Check(name, status=NO_GPU, line="this machine has no GPU TensorFlow can see"))


def _error(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:400]}"


# ----------------------------------------------------------------------------- params and data


def model_spec(task: str, name: str, entry: dict[str, Any], changes: dict[str, Any]) -> Any:
    """The :class:`~textrnn.catalog.ModelSpec` of model ``name`` of ``task``, resolved from
    params.yaml's network defaults with ``changes`` laid over them and ``entry`` as its variants
    entry (validated as the resolve stage validates it)."""
    from textrnn.catalog import resolve_model
    from textrnn.config import read_yaml

    section = read_yaml(PARAMS)["train"][task]
    defaults = {**section["defaults"]["network"], **changes}
    return resolve_model(task, name, {"defaults": {"network": defaults},
                                      "variants": {name: entry}})


def lstm_changes(kind: str, implementation: str | None) -> dict[str, Any]:
    """``--implementation`` for the lstm kinds; params.yaml's own value otherwise."""
    return {"implementation": implementation} if implementation and kind == "lstm" else {}


def data_source(task: str, dataset: str) -> tuple[str, Path]:
    """Where dataset ``dataset`` of ``task`` is read from: ``("raw", file)`` from the mirror or
    the fetch stage's folder, else ``("processed", file)`` from the preprocess stage's."""
    from textrnn.config import load_params
    from textrnn.data.sources import MIRROR_ENV
    from textrnn.datasets import get_dataset

    filename = get_dataset(dataset).filename
    mirror = os.environ.get(MIRROR_ENV)
    tried = []
    for folder in ([Path(mirror)] if mirror else []) + [ROOT / "data" / "raw" / task]:
        if (folder / filename).is_file():
            return "raw", folder / filename
        tried.append(str(folder / filename))
    processed = ROOT / "data" / "processed" / task / ("data.parquet" if task == "sentiment"
                                                     else "text.txt")
    if processed.is_file() and getattr(load_params("data", path=PARAMS).data, task) == dataset:
        return "processed", processed
    tried.append(f"{processed} (of data.{task}: {dataset})")
    sys.exit(f"error: no {dataset} data: looked for {', '.join(tried)}; set {MIRROR_ENV} to a "
             f"folder holding {filename}")


def uci_splits(rows: int) -> tuple[Any, Any, str]:
    """UCI's train and val splits as the split stage cuts them (params.yaml's seed and
    fractions), ``rows`` > 0 keeping a stratified share of each; and where they came from."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    from textrnn.config import load_params
    from textrnn.data.splitting import split_table
    from textrnn.datasets import get_dataset
    from textrnn.sentiment import data as sentiment_data

    params = load_params("seed", "preprocess", "split", path=PARAMS)
    form, path = data_source("sentiment", "uci")
    if form == "raw":
        cleaning = params.preprocess.sentiment
        table, _ = sentiment_data.clean(get_dataset("uci").read(path),
                                        strip_html=cleaning.strip_html,
                                        drop_duplicates=cleaning.drop_duplicates)
    else:
        table = pd.read_parquet(path)
    fractions = params.split.sentiment
    splits, _ = split_table(table, train=fractions.train, val=fractions.val, test=fractions.test,
                            upstream_val_fraction=fractions.upstream_val_fraction,
                            has_upstream_test=False, seed=params.seed)
    train, val = splits["train"], splits["val"]
    if 0 < rows < len(train):
        share = rows / len(train)
        parts = []
        for part in (train, val):
            keep, _ = train_test_split(part, train_size=share,
                                       random_state=params.seed,
                                       stratify=part["label"] + "/" + part["origin"])
            parts.append(keep.reset_index(drop=True))
        train, val = parts
    return train, val, f"{form} {path}"


def with_empty_texts(frame: Any) -> tuple[list[str], list[str]]:
    """``frame``'s texts and labels with :data:`EMPTY_TEXTS` added, labels taken in turn."""
    labels = sorted(set(frame["label"]))
    extra = [labels[i % len(labels)] for i in range(len(EMPTY_TEXTS))]
    return list(frame["text"]) + EMPTY_TEXTS, list(frame["label"]) + extra


def quijote_ids() -> tuple[list[str], Any, Any, str]:
    """Don Quijote's vocabulary and its train and val splits as ids, cleaned and cut as the
    preprocess and split stages do it."""
    from textrnn.charlm import data as charlm_data
    from textrnn.charlm.train import build_vocab, encode
    from textrnn.config import load_params
    from textrnn.datasets import get_dataset

    params = load_params("preprocess", "split", path=PARAMS)
    form, path = data_source("charlm", "quijote")
    if form == "raw":
        text = charlm_data.clean(get_dataset("quijote").read(path),
                                 lowercase=params.preprocess.charlm.lowercase)
    else:
        text = path.read_text(encoding="utf-8")
    fractions = params.split.charlm
    parts = charlm_data.split_contiguous(text, train=fractions.train, val=fractions.val)
    vocab = build_vocab(parts["train"])
    return vocab, encode(parts["train"], vocab), encode(parts["val"], vocab), f"{form} {path}"


# ----------------------------------------------------------------------------- kernels


def graph_kernel_ops(model: Any, spec: Any) -> list[str]:
    """The recurrent kernel ops (``CudnnRNN*``, ``BlockLSTM*``) in ``model``'s traced inference
    graph for inputs of ``spec``: what runs, not what the layer's checks expect."""
    import tensorflow as tf

    graph_def = (tf.function(lambda x: model(x, training=False))
                 .get_concrete_function(spec).graph.as_graph_def())
    ops = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        ops |= {node.op for node in function.node_def}
    return sorted(op for op in ops if op.startswith(("CudnnRNN", "BlockLSTM")))


# ----------------------------------------------------------------------------- the checks


def device_check(check: Check, gpus: list[Any]) -> None:
    import keras
    import tensorflow as tf
    from run_all import cpu_model  # benchmarks/run_all.py (this script's folder)

    names = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
             for gpu in gpus]
    cuda_build, cpu = tf.test.is_built_with_cuda(), cpu_model()
    check.figures.update(tensorflow=tf.__version__, keras=keras.__version__, gpus=names,
                         cuda_build=cuda_build, cpu=cpu, cpu_count=os.cpu_count(),
                         python=platform.python_version())
    gpu = ", ".join(names) if names else "none visible"
    check.line = (f"TensorFlow {tf.__version__} (CUDA build: {cuda_build}), "
                  f"Keras {keras.__version__}; GPU: {gpu}; CPU: {cpu} ({os.cpu_count()} cores)")


@dataclass
class SentimentData:
    train_texts: list[str]
    train_labels: list[str]
    val_texts: list[str]
    val_labels: list[str]
    vectorizer: Any                    # params.yaml's train.sentiment.vectorizer.uci
    seed: int
    source: str


def sentiment_data(rows: int) -> SentimentData:
    from textrnn.config import load_params

    params = load_params("seed", "train", path=PARAMS)
    train, val, source = uci_splits(rows)
    train_texts, train_labels = with_empty_texts(train)
    val_texts, val_labels = with_empty_texts(val)
    return SentimentData(train_texts, train_labels, val_texts, val_labels,
                         params.train.sentiment.vectorizer["uci"], params.seed, source)


def train_sentiment(check: Check, data: SentimentData, name: str, work: Path,
                    changes: dict[str, Any]) -> Any:
    """One epoch of model ``name`` (:data:`KINDS`) through the train stage's own classes;
    returns the fitted :class:`~textrnn.sentiment.models.KerasSentiment`."""
    import keras
    import numpy as np

    from textrnn.layers import describe_kernels, recurrent_kernels

    spec = model_spec("sentiment", name, KINDS[name],
                      {"epochs": 1, "embedding_init": "random", **changes})
    keras.utils.set_random_seed(data.seed)
    model = spec.kind.build(spec.params, vectorizer=data.vectorizer, key=spec.key)
    history = model.fit(data.train_texts, data.train_labels, data.val_texts, data.val_labels,
                        seed=data.seed, work_dir=work / name, verbose=0)
    seconds = history["epoch_seconds"][0]
    kernels = recurrent_kernels(model.model)
    empty = model.predict_proba(EMPTY_TEXTS)
    finite = bool(np.isfinite(empty).all() and np.allclose(empty.sum(axis=1), 1.0, atol=1e-3))
    check.seconds = seconds
    check.figures.update(epoch_seconds=seconds, texts=len(data.train_texts),
                         texts_per_second=len(data.train_texts) / seconds,
                         loss=history["loss"][0], val_accuracy=history["val_accuracy"][0],
                         kernels=kernels, empty_texts_probabilities=empty.tolist())
    check.line = (f"1 epoch {seconds:.2f} s (tracing included), "
                  f"{len(data.train_texts) / seconds:,.0f} texts/s, loss {history['loss'][0]:.3f}, "
                  f"val accuracy {history['val_accuracy'][0]:.3f}; kernels: "
                  f"{describe_kernels(kernels)}; {len(EMPTY_TEXTS)} empty texts -> "
                  + ("probabilities" if finite else "NOT probabilities"))
    if not kernels or not np.isfinite(history["loss"][0]) or not finite:
        check.status = "failed"
    return model


def cudnn_check(check: Check, models: dict[str, Any]) -> None:
    import tensorflow as tf

    from textrnn.layers import describe_kernels, recurrent_kernels

    spec = tf.TensorSpec([None], tf.string)
    found = {}
    for name, model in models.items():
        if name == "simple_rnn":    # Keras has no cuDNN kernel for SimpleRNN
            continue
        found[name] = {"kernels": recurrent_kernels(model.model),
                       "graph_ops": graph_kernel_ops(model.model, spec)}
    check.figures.update(found)
    missing = [name for name, seen in found.items()
               if not any(op.startswith("CudnnRNN") for op in seen["graph_ops"])
               or set(seen["kernels"].values()) != {"cudnn"}]
    check.line = "; ".join(f"{name}: {', '.join(seen['graph_ops']) or 'no cuDNN op'} "
                           f"({describe_kernels(seen['kernels'])})"
                           for name, seen in found.items())
    if missing or not found:
        check.status = "failed"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_check(check: Check, model: Any, work: Path) -> None:
    """Save ``model`` as models/sentiment/lstm/model/ and the sentiment champion, start the
    service on it (uvicorn, a free loopback port) and send it one batch."""
    import requests
    import uvicorn

    from textrnn import paths
    from textrnn.io import write_json
    from textrnn.serving import ServingSettings, create_app, load_models

    if model is None:
        raise RuntimeError("no lstm model was trained (see the sentiment lstm line)")
    models_dir = work / "models"
    model_dir = paths.model_dir("sentiment", "lstm", models_dir)
    model_dir.mkdir(parents=True)
    model.save(model_dir)
    write_json(model_dir / "meta.json", {"task": "sentiment", "model": "lstm", "kind": "lstm",
                                         "classes": model.classes, "dataset": "uci"})
    write_json(paths.champion_path("sentiment", models_dir), {"model": "lstm"})

    start = time.perf_counter()
    sentiment, _ = load_models(models_dir)           # loads, checks and warms the model
    settings = ServingSettings(port=free_port(), models_dir=models_dir, access_log=False)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, sentiment=sentiment),
                                           host=settings.host, port=settings.port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://{settings.host}:{settings.port}"
    try:
        deadline = time.monotonic() + 120
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start (see its log above)")
            time.sleep(0.01)
        requests.get(f"{url}/ready", timeout=30).raise_for_status()
        startup = time.perf_counter() - start
        sent = time.perf_counter()
        answer = requests.post(f"{url}/v1/sentiment", json={"texts": SERVICE_TEXTS}, timeout=60)
        latency = time.perf_counter() - sent
        refused = requests.post(f"{url}/v1/sentiment", json={"texts": ["fine", ""]}, timeout=60)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    results = answer.json().get("results", []) if answer.ok else []
    code = (refused.json().get("error") or {}).get("code")
    check.seconds = startup
    check.figures.update(startup_seconds=startup, request_seconds=latency, texts=SERVICE_TEXTS,
                         status=answer.status_code, predictions=len(results),
                         labels=[r["label"] for r in results],
                         empty_text_status=refused.status_code, empty_text_code=code)
    check.line = (f"start-up {startup:.2f} s (load + warm-up, \"\" among its texts); POST "
                  f"{len(SERVICE_TEXTS)} texts with \"!!!\", \"...\", \"?!\" -> "
                  f"{answer.status_code}, {len(results)} predictions in {latency * 1000:.0f} ms; "
                  f"\"\" -> {refused.status_code} {code}")
    if (answer.status_code != 200 or len(results) != len(SERVICE_TEXTS)
            or refused.status_code != 400 or code != "empty_text"):
        check.status = "failed"


@dataclass
class LanguageData:
    vocab: list[str]
    train_ids: Any
    val_ids: Any
    sequence_length: int
    seed: int
    source: str


def language_data() -> LanguageData:
    from textrnn.config import load_params

    params = load_params("seed", "train", path=PARAMS)
    vocab, train_ids, val_ids, source = quijote_ids()
    return LanguageData(vocab, train_ids, val_ids, params.train.charlm.sequence_length,
                        params.seed, source)


def lm_epoch(check: Check, data: LanguageData, steps: int, work: Path,
             changes: dict[str, Any]) -> None:
    """One epoch of ``steps`` batches of the charlm ``LM_KIND`` model; validation on two batches
    of the val text (the whole of it would cost more than the epoch on a CPU)."""
    import keras

    from textrnn.charlm.train import fit_model
    from textrnn.layers import describe_kernels, recurrent_kernels

    spec = model_spec("charlm", LM_KIND, {}, {"epochs": 1, "steps_per_epoch": steps, **changes})
    batch, length = spec.params.batch_size, data.sequence_length
    keras.utils.set_random_seed(data.seed)
    model, history = fit_model(spec.kind, spec.params, vocab_size=len(data.vocab),
                               train_ids=data.train_ids,
                               val_ids=data.val_ids[:2 * batch * length + 1],
                               sequence_length=length, seed=data.seed,
                               work_dir=work / f"charlm-{check.name}", verbose=0)
    seconds = history["epoch_seconds"][0]
    characters = steps * batch * length
    kernels = recurrent_kernels(model)
    check.seconds = seconds
    check.figures.update(epoch_seconds=seconds, steps=steps, batch_size=batch,
                         sequence_length=length, characters=characters,
                         characters_per_second=characters / seconds, loss=history["loss"][0],
                         kernels=kernels)
    check.line = (f"{LM_KIND}, 1 epoch of {steps} batches x {batch} x {length} characters: "
                  f"{seconds:.2f} s (tracing included), {characters / seconds:,.0f} characters/s, "
                  f"loss {history['loss'][0]:.3f}; kernels: {describe_kernels(kernels)}")
    if not kernels or not math.isfinite(history["loss"][0]):
        check.status = "failed"


def mixed_precision_check(check: Check, data: SentimentData, lm: LanguageData, steps: int,
                          work: Path, implementation: str | None,
                          float32: dict[str, float | None]) -> None:
    """The lstm sentiment epoch and the language-model epoch with ``mixed_precision: true``,
    beside their float32 seconds."""
    changes = {"mixed_precision": True, **lstm_changes("lstm", implementation)}
    inner = Check("mixed sentiment")
    train_sentiment(inner, data, "lstm", work / "mixed", changes)
    lm_inner = Check("mixed charlm")
    lm_epoch(lm_inner, lm, steps, work / "mixed", changes)
    seconds = {"sentiment lstm": inner.seconds, f"charlm {LM_KIND}": lm_inner.seconds}
    check.figures.update(mixed_seconds=seconds, float32_seconds=float32,
                         sentiment=inner.figures, charlm=lm_inner.figures)
    check.line = "; ".join(
        f"{name} 1 epoch {value:.2f} s" + (f" (float32 {float32[name]:.2f} s)"
                                           if float32.get(name) else "")
        for name, value in seconds.items())
    for part in (inner, lm_inner):
        if part.status == "failed":
            check.status = "failed"
            check.line += f"; {part.name}: {part.line}"


def determinism_check(check: Check, args: argparse.Namespace) -> None:
    """:func:`determinism_step` in a child process: op determinism is process-wide."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "step.json"
        command = [sys.executable, str(Path(__file__).resolve()), "--determinism-step",
                   "--json", str(out)]
        if args.implementation:
            command += ["--implementation", args.implementation]
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
        if not out.is_file():
            raise RuntimeError(f"the child process exited {proc.returncode} with no result: "
                               f"{proc.stderr.strip().splitlines()[-1:] or proc.stdout[-300:]}")
        result = json.loads(out.read_text(encoding="utf-8"))
    check.figures.update(result)
    if result["ran"]:
        check.line = (f"one lazy_adam step with op determinism on ran (loss {result['loss']:.4f}, "
                      f"{result['seconds']:.2f} s with the model's build and tracing)")
    else:
        check.status = "failed"
        check.line = f"TensorFlow refused the step: {result['error']}"


def determinism_step(json_path: Path, implementation: str | None) -> None:
    """The child of :func:`determinism_check`: op determinism on, then one training step (one
    batch, validation on a few texts) of the sentiment lstm with optimizer lazy_adam, empty
    texts in the batch; writes ``{ran, loss | error, seconds}`` to ``json_path``."""
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    start = time.perf_counter()
    try:
        import keras

        from textrnn.config import load_params

        params = load_params("seed", "train", path=PARAMS)
        train, val, _ = uci_splits(0)
        spec = model_spec("sentiment", "lstm", {},
                          {"epochs": 1, "embedding_init": "random", "optimizer": "lazy_adam",
                           **lstm_changes("lstm", implementation)})
        batch = spec.params.batch_size             # one batch: one step
        texts, labels = with_empty_texts(train.iloc[:max(batch - len(EMPTY_TEXTS), 2)])
        keras.utils.set_random_seed(params.seed)
        model = spec.kind.build(spec.params, vectorizer=params.train.sentiment.vectorizer["uci"],
                                key=spec.key)
        with tempfile.TemporaryDirectory() as work:
            history = model.fit(texts, labels, list(val.text[:8]), list(val.label[:8]),
                                seed=params.seed, work_dir=Path(work), verbose=0)
        result = {"ran": True, "loss": history["loss"][0], "steps": 1}
    except Exception as exc:  # noqa: BLE001 (the error is the finding: reported, not raised)
        result = {"ran": False, "error": _error(exc)}
    result["seconds"] = time.perf_counter() - start
    json_path.write_text(json.dumps(result), encoding="utf-8")


# ----------------------------------------------------------------------------- the run


def summary(checks: list[Check]) -> None:
    print("\n| check | result | seconds |\n|---|---|---:|")
    for check in checks:
        seconds = f"{check.seconds:.2f}" if check.seconds is not None else ""
        result = "FAILED" if check.status == "failed" else check.status
        print(f"| {check.name} | {result} | {seconds} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"a smaller run (--rows {QUICK['rows']}, --lm-steps "
                             f"{QUICK['lm_steps']}) for the test")
    parser.add_argument("--rows", type=int, default=None,
                        help="UCI training texts, a stratified share (default: all, ~2,100)")
    parser.add_argument("--lm-steps", type=int, default=None,
                        help=f"batches of the language-model epoch (default "
                             f"{DEFAULTS['lm_steps']})")
    parser.add_argument("--implementation", choices=("keras", "fused"), default=None,
                        help="the lstm kinds' implementation (default: params.yaml's)")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    parser.add_argument("--determinism-step", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.determinism_step:
        if args.json is None:
            parser.error("--determinism-step needs --json")
        determinism_step(args.json, args.implementation)
        return
    sizes = QUICK if args.quick else DEFAULTS
    rows = sizes["rows"] if args.rows is None else args.rows
    lm_steps = sizes["lm_steps"] if args.lm_steps is None else args.lm_steps
    if not (rows == 0 or rows >= 50) or lm_steps < 1:
        parser.error("--rows must be 0 (all) or >= 50, and --lm-steps >= 1")

    started = time.perf_counter()
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")     # not the retracing notes of one model after another
    gpus = tf.config.list_physical_devices("GPU")
    print(f"GPU check: {' '.join(sys.argv)}", flush=True)
    checks = [run_check("device", lambda check: device_check(check, gpus))]
    data = sentiment_data(rows)
    print(f"{'data':<20} uci: {len(data.train_texts):,} train texts and "
          f"{len(data.val_texts):,} val texts ({len(EMPTY_TEXTS)} empty or punctuation-only "
          f"in each), from {data.source}", flush=True)
    models: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as folder:
        work = Path(folder)
        for name, entry in KINDS.items():
            changes = lstm_changes(entry.get("kind", name), args.implementation)

            def body(check: Check, name: str = name, changes: dict = changes) -> None:
                models[name] = train_sentiment(check, data, name, work, changes)

            checks.append(run_check(f"sentiment {name}", body))
        checks.append(run_check("cudnn", lambda check: cudnn_check(check, models)) if gpus
                      else skipped("cudnn"))
        checks.append(run_check("service",
                                lambda check: service_check(check, models.get("lstm"), work)))
        lm = language_data()
        print(f"{'data':<20} quijote: {len(lm.train_ids):,} train characters, vocabulary "
              f"{len(lm.vocab)}, from {lm.source}", flush=True)
        lm_changes = lstm_changes(LM_KIND, args.implementation)
        checks.append(run_check(f"charlm {LM_KIND}",
                                lambda check: lm_epoch(check, lm, lm_steps, work, lm_changes)))
        by_name = {check.name: check for check in checks}
        float32 = {name: by_name[name].seconds if by_name[name].status == "ok" else None
                   for name in ("sentiment lstm", f"charlm {LM_KIND}")}
        checks.append(run_check("mixed precision", lambda check: mixed_precision_check(
            check, data, lm, lm_steps, work, args.implementation, float32))
            if gpus else skipped("mixed precision"))
    checks.append(run_check("determinism", lambda check: determinism_check(check, args)))

    summary(checks)
    passed = all(check.passed for check in checks)
    total = time.perf_counter() - started
    ran = [check for check in checks if check.status != NO_GPU]
    print(f"\n{sum(c.passed for c in ran)} of {len(ran)} checks that ran passed in {total:.0f} s"
          + ("" if gpus else f"; {len(checks) - len(ran)} {NO_GPU}"))
    if args.json:
        args.json.write_text(json.dumps({
            "command": sys.argv, "passed": passed, "seconds": total, "rows": rows,
            "lm_steps": lm_steps, "implementation": args.implementation,
            "checks": [{**asdict(check), "passed": check.passed} for check in checks],
        }, indent=1, default=str), encoding="utf-8")
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
