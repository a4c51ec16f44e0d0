"""Serving benchmark: the textrnn service vs a naive Flask app vs `mlflow models serve`.

All three serve the same saved sentiment model; each is started in turn on a free loopback
port and sent single-text requests by N client threads (keep-alive connections) for a fixed
time. Printed: requests/s, p50 and p99 latency, failed requests, at concurrency 1 and 16. Then
the textrnn service alone answers `"explain": true` requests (word attributions) for one
UCI-length sentence at concurrency 1, when its model can be explained (the project's neural
models): its p50 and p99 latency, beside the others and in --json.

    .venv/bin/python benchmarks/bench_serving.py                 # the champion in models/
    .venv/bin/python benchmarks/bench_serving.py --seconds 5 --json bench.json

Without a champion in --models-dir it builds an untrained LSTM of the default size
(params.yaml: UCI vectorizer, embedding 64, 64 units, dense 32) in a temporary folder:
inference cost does not depend on the weights. The naive app is the way a published student
project served its model: Flask, `model.predict` on every request.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
# 12 words: the mean length of a UCI test sentence is 12.1 (median 10)
EXPLAIN_TEXT = "The plot was thin and slow but the acting was wonderful and moving."
EXPLAIN_NAME = "explain: true on textrnn serve (one 12-word sentence)"
TEXTS = [
    "The plot was thin but the acting was wonderful.", "Worst purchase I have ever made.",
    "Great phone, battery lasts two days.", "I would not go back to this restaurant.",
    "An absolute delight from start to finish!", "The service was slow and the food was cold.",
    "Not bad at all, I expected much worse.", "This movie is a waste of two hours.",
    "Works as described, fast shipping.", "The soundtrack alone is worth the ticket.",
]

# ----------------------------------------------------------------------------- the naive app

NAIVE_APP = """
import sys
import numpy as np, keras, tensorflow as tf
from flask import Flask, jsonify, request
import textrnn.layers  # registers the project's custom layers, as any loader must

model = keras.saving.load_model(sys.argv[1])
app = Flask(__name__)

@app.route("/predict", methods=["POST"])
def predict():
    text = request.get_json()["text"]
    probabilities = model.predict(tf.constant([text]), verbose=0)[0]
    return jsonify({"label": int(np.argmax(probabilities)),
                    "probability": float(probabilities[1])})

app.run(host="127.0.0.1", port=int(sys.argv[2]), threaded=True)
"""


# ----------------------------------------------------------------------------- targets


@dataclass
class Target:
    name: str
    command: list[str]
    ready_url: str
    url: str
    body: object        # a function of the text -> JSON body
    env: dict | None = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def demo_models(root: Path) -> Path:
    """models/sentiment/lstm/model/ laid out as docs/CONTRACTS.md says, untrained."""
    import keras
    from keras import layers

    from textrnn import paths

    keras.utils.set_random_seed(0)
    vectorizer = layers.TextVectorization(max_tokens=8000, output_sequence_length=64)
    vectorizer.adapt(TEXTS)
    texts = keras.Input(shape=(), dtype="string")
    x = layers.Embedding(8000, 64, mask_zero=True)(vectorizer(texts))
    x = layers.LSTM(64)(x)
    x = layers.Dense(32, activation="relu")(x)
    model = keras.Model(texts, layers.Dense(2, activation="softmax")(x))
    model_dir = paths.model_dir("sentiment", "lstm", root)
    model_dir.mkdir(parents=True)
    model.save(model_dir / "model.keras")
    (model_dir / "meta.json").write_text(json.dumps({
        "task": "sentiment", "model": "lstm", "classes": ["negative", "positive"],
        "dataset": "untrained benchmark model", "trained_at": None, "git_commit": None,
        "mlflow_run_id": None, "val_metrics": {}}))
    paths.champion_path("sentiment", root).write_text(json.dumps({"model": "lstm"}))
    return root


class KerasTextModel:
    """MLflow pyfunc over the saved Keras file. MLflow's own keras flavour calls
    ``model.predict(numpy array)``, which Keras refuses for string input; this wrapper does
    what that flavour does (``model.predict``) with the strings as a tf.string tensor."""

    def load_context(self, context):
        import keras

        import textrnn.layers  # noqa: F401 (registers the project's custom layers)

        self.model = keras.saving.load_model(context.artifacts["keras_model"])

    def predict(self, context, model_input, params=None):
        import tensorflow as tf

        column = model_input.iloc[:, 0] if hasattr(model_input, "iloc") else model_input
        return self.model.predict(tf.constant([str(text) for text in column]), verbose=0)


def mlflow_model(keras_file: Path, dest: Path) -> Path:
    """The same Keras model saved in MLflow's pyfunc format, for `mlflow models serve`."""
    import mlflow.pyfunc

    path = dest / "mlflow-model"
    python_model = type("KerasTextModel", (mlflow.pyfunc.PythonModel,),
                        dict(KerasTextModel.__dict__))
    mlflow.pyfunc.save_model(str(path), python_model=python_model(),
                             artifacts={"keras_model": str(keras_file)},
                             code_paths=[str(Path(__file__).resolve())])  # for the class, if needed
    return path


def targets(models_dir: Path, work: Path) -> list[Target]:
    from textrnn import paths

    champion = json.loads(paths.champion_path("sentiment", models_dir).read_text())["model"]
    keras_file = paths.model_dir("sentiment", champion, models_dir) / "model.keras"
    python = sys.executable
    ours, naive, mlflow = free_port(), free_port(), free_port()
    (work / "naive_app.py").write_text(NAIVE_APP)
    found = [
        Target("textrnn serve (FastAPI, tf.function, micro-batching)",
               [python, "-m", "textrnn", "serve", "--port", str(ours), "--models-dir",
                str(models_dir), "--no-access-log"],
               f"http://127.0.0.1:{ours}/ready", f"http://127.0.0.1:{ours}/v1/sentiment",
               lambda text: {"text": text}),
        Target("naive Flask app (model.predict per request)",
               [python, str(work / "naive_app.py"), str(keras_file), str(naive)],
               f"http://127.0.0.1:{naive}/predict", f"http://127.0.0.1:{naive}/predict",
               lambda text: {"text": text}),
    ]
    try:
        model_uri = mlflow_model(keras_file, work)
    except Exception as exc:  # noqa: BLE001 (report, do not hide: the row says why it is missing)
        print(f"mlflow models serve: skipped, the model could not be saved in MLflow's format "
              f"({type(exc).__name__}: {exc})")
    else:
        mlflow_bin = str(Path(python).with_name("mlflow"))
        found.append(Target(
            "mlflow models serve (--env-manager local)",
            [mlflow_bin, "models", "serve", "-m", str(model_uri), "-h", "127.0.0.1", "-p",
             str(mlflow), "--env-manager", "local"],
            f"http://127.0.0.1:{mlflow}/ping", f"http://127.0.0.1:{mlflow}/invocations",
            lambda text: {"dataframe_split": {"columns": ["text"], "data": [[text]]}},
            # it execs `uvicorn` by name: the venv's bin must be on PATH
            env={"MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
                 "PATH": f"{Path(python).parent}{os.pathsep}{os.environ.get('PATH', '')}"}))
    return found


# ----------------------------------------------------------------------------- measuring


@dataclass
class Result:
    target: str
    concurrency: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    failed: int


def start(target: Target, log_path: Path, timeout: float = 300) -> subprocess.Popen:
    log = log_path.open("w")
    proc = subprocess.Popen(target.command, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, **(target.env or {})}, cwd=ROOT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited {proc.returncode}; log: {log_path}")
        try:
            if target.ready_url.endswith("/predict"):   # the naive app has no probe
                response = httpx.post(target.ready_url, json={"text": "warm up"}, timeout=30)
            else:
                response = httpx.get(target.ready_url, timeout=5)
            if response.status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    stop(proc)
    raise RuntimeError(f"not ready after {timeout:.0f} s; log: {log_path}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def measure(target: Target, concurrency: int, seconds: float) -> Result:
    latencies: list[float] = []
    failed = 0
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(index: int) -> None:
        nonlocal failed
        mine, bad, n = [], 0, index
        with httpx.Client(timeout=60) as http:
            http.post(target.url, json=target.body(TEXTS[0]))           # connect, warm
            while time.perf_counter() < stop_at:
                n += 1
                began = time.perf_counter()
                try:
                    ok = http.post(target.url, json=target.body(TEXTS[n % len(TEXTS)])
                                   ).status_code == 200
                except httpx.HTTPError:
                    ok = False
                mine.append(time.perf_counter() - began)
                bad += not ok
        with lock:
            latencies.extend(mine)
            failed += bad

    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else 0.0
    return Result(target.name, concurrency, len(latencies) / elapsed,
                  1000 * statistics.median(latencies) if latencies else 0.0, 1000 * p99,
                  len(latencies), failed)


def measure_explain(target: Target, seconds: float, notes: list[str]) -> Result | None:
    """``"explain": true`` requests for EXPLAIN_TEXT at concurrency 1; None (and a note) when
    the served model cannot be explained."""
    models = httpx.get(target.url.replace("/sentiment", "/models"), timeout=30).json()["models"]
    sentiment = next(m for m in models if m["task"] == "sentiment")
    if not sentiment.get("explainable"):
        notes.append(f"explain: not measured, the served model {sentiment['name']!r} cannot be "
                     "explained (only the project's neural models can)")
        return None
    explain = Target(EXPLAIN_NAME, target.command, target.ready_url, target.url,
                     lambda text: {"text": EXPLAIN_TEXT, "explain": True})
    result = measure(explain, 1, seconds)
    print(f"  {result.target}: concurrency 1: {result.requests_per_s:.1f} req/s", flush=True)
    return result


# ----------------------------------------------------------------------------- report


def report(results: list[Result], notes: list[str]) -> None:
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} "
          f"{platform.release()}, Python {platform.python_version()}")
    header = f"{'server':<56} {'conc':>4} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'failed':>6}"
    print(header + "\n" + "-" * len(header))
    for r in results:
        print(f"{r.target:<56} {r.concurrency:>4} {r.requests_per_s:>8.1f} {r.p50_ms:>8.1f} "
              f"{r.p99_ms:>8.1f} {r.failed:>6}")
    by = {(r.target.split(" ")[0], r.concurrency): r for r in results}
    ours16, naive16, ours1 = by.get(("textrnn", 16)), by.get(("naive", 16)), by.get(("textrnn", 1))
    print()
    if ours16 and naive16 and naive16.requests_per_s:
        ratio = ours16.requests_per_s / naive16.requests_per_s
        print(f"throughput at concurrency 16: {ratio:.1f}x the naive app "
              f"(target >= 10x: {'met' if ratio >= 10 else 'NOT met'})")
    mlflow16 = by.get(("mlflow", 16))
    if ours16 and mlflow16 and mlflow16.requests_per_s:
        print("throughput at concurrency 16: "
              f"{ours16.requests_per_s / mlflow16.requests_per_s:.1f}x mlflow models serve")
    if ours1:
        print(f"p50 latency at concurrency 1: {ours1.p50_ms:.1f} ms "
              f"(target <= 10 ms: {'met' if ours1.p50_ms <= 10 else 'NOT met'})")
    explained = by.get(("explain:", 1))
    if explained:
        print(f"explain p50 latency at concurrency 1: {explained.p50_ms:.1f} ms, p99 "
              f"{explained.p99_ms:.1f} ms (target p50 <= 50 ms: "
              f"{'met' if explained.p50_ms <= 50 else 'NOT met'})")
    for note in notes:
        print(note)
    from summary import emit

    rows = []
    for conc in sorted({r.concurrency for r in results}):
        ours, naive, mlflow = (by.get(("textrnn", conc)), by.get(("naive", conc)),
                               by.get(("mlflow", conc)))
        if not ours:
            continue
        rows.append({"benchmark": "serving",
                     "what": f"req/s at concurrency {conc} (vs naive Flask)",
                     "value": ours.requests_per_s, "unit": "req/s",
                     "naive": naive.requests_per_s if naive else None,
                     "ratio": (ours.requests_per_s / naive.requests_per_s
                               if naive and naive.requests_per_s else None),
                     "target": ">= 10x naive" if conc == 16 else ""})
        if mlflow and mlflow.requests_per_s:
            rows.append({"benchmark": "serving",
                         "what": f"req/s at concurrency {conc} (vs mlflow models serve)",
                         "value": ours.requests_per_s, "unit": "req/s",
                         "naive": mlflow.requests_per_s,
                         "ratio": ours.requests_per_s / mlflow.requests_per_s, "target": ""})
        rows.append({"benchmark": "serving", "what": f"p50 / p99 latency at concurrency {conc}",
                     "value": ours.p50_ms, "unit": f"ms (p99 {ours.p99_ms:.1f})",
                     "naive": naive.p50_ms if naive else None, "ratio": None,
                     "target": "p50 <= 10 ms" if conc == 1 else ""})
    if explained:
        rows.append({"benchmark": "serving",
                     "what": "explain: true, p50 / p99 latency at concurrency 1",
                     "value": explained.p50_ms, "unit": f"ms (p99 {explained.p99_ms:.1f})",
                     "naive": None, "ratio": None, "target": "p50 <= 50 ms"})
    emit(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--seconds", type=float, default=8.0, help="per target and concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from textrnn import paths

    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    notes: list[str] = []
    models_dir = args.models_dir
    champion_file = paths.champion_path("sentiment", models_dir)
    if not champion_file.is_file():
        models_dir = demo_models(work / "models")
        notes.append(f"model: no champion in {args.models_dir}; an untrained LSTM of the default "
                     "size was served (same inference cost as a trained one)")
    else:
        champion = json.loads(champion_file.read_text())["model"]
        notes.append(f"model: the sentiment champion {champion!r} of {models_dir}")
    results: list[Result] = []
    try:
        for target in targets(models_dir, work):
            log_path = work / (target.name.split(" ")[0] + ".log")
            try:
                proc = start(target, log_path)
            except RuntimeError as exc:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
                notes.append(f"{target.name}: could not start ({exc}): {' | '.join(tail)}")
                continue
            try:
                for concurrency in args.concurrency:
                    result = measure(target, concurrency, args.seconds)
                    results.append(result)
                    print(f"  {result.target}: concurrency {concurrency}: "
                          f"{result.requests_per_s:.1f} req/s", flush=True)
                if target.name.startswith("textrnn"):
                    explained = measure_explain(target, args.seconds, notes)
                    results += [explained] if explained else []
            finally:
                stop(proc)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(results, notes)
    if args.json:
        args.json.write_text(json.dumps({"results": [asdict(r) for r in results],
                                         "notes": notes}, indent=2) + "\n")


if __name__ == "__main__":
    main()
