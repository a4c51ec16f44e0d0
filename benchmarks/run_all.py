"""`make bench`: every benchmark of the project, then one table of figures and ratios.

Each benchmark runs as its own process (so one's TensorFlow state cannot colour another's) and
hands back its headline figures through benchmarks/summary.py. Also timed here: a no-op
`dvc repro` (nothing changed, so nothing runs). Needs the default pipeline to have run
(`make repro`) for the trained models and the UCI split.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def run_benchmark(script: str, args: list[str]) -> list[dict]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    print(f"\n=== {script} {' '.join(args)}", flush=True)
    env = {**os.environ, "TEXTRNN_BENCH_JSON": str(out), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], cwd=ROOT, env=env)
    rows = json.loads(out.read_text()) if out.stat().st_size else []
    out.unlink(missing_ok=True)
    if proc.returncode != 0:
        rows.append({"benchmark": script, "what": f"FAILED (exit {proc.returncode})",
                     "value": None})
    return rows


def noop_repro(targets: list[str]) -> list[dict]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = ["dvc", "repro", *targets]
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    ran = "Running stage" in proc.stdout
    return [{"benchmark": "dvc", "what": f"no-op `{' '.join(command)}`"
             + (" (NOT a no-op: stages ran)" if ran else ""), "value": seconds, "unit": "s",
             "naive": None, "ratio": None, "target": "< 10 s"}]


def cpu_model() -> str:
    """The CPU's marketing name (Linux: /proc/cpuinfo), else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def fmt(value, digits: int = 1) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and abs(value) < 1:
        digits = 3  # shares and accuracies: 0.949, not 0.9
    return f"{value:,.{digits}f}" if isinstance(value, float) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="shorter runs (a tiny tuning grid, fewer seconds per load level)")
    parser.add_argument("--repro-target", nargs="*", default=[], metavar="STAGE",
                        help="time the no-op `dvc repro` of these stages only (default: all), "
                             "e.g. evaluate_sentiment when only the sentiment half has run")
    args = parser.parse_args()
    rows = noop_repro(args.repro_target)
    for network in ("trained", "defaults"):
        rows += run_benchmark("bench_bucketing.py",
                              ["--epochs", "3" if args.quick else "8", "--params", network])
    rows += run_benchmark("bench_embedding.py", ["--epochs", "3" if args.quick else "8"])
    rows += run_benchmark("bench_kernels.py", ["--quick"] if args.quick else [])
    rows += run_benchmark("bench_generation.py", [])
    rows += run_benchmark("bench_serving.py", ["--seconds", "4" if args.quick else "8"])
    rows += run_benchmark("bench_tune_vs_grid.py", ["--quick"] if args.quick else [])

    print(f"\nmachine: {cpu_model()} ({platform.machine()}), {os.cpu_count()} CPUs, "
          f"{platform.system()} {platform.release()}, Python {platform.python_version()}, load "
          f"{os.getloadavg()[0]:.1f}")
    print("| benchmark | figure | value | unit | naive way | ratio | target |")
    print("|---|---|---:|---|---:|---:|---|")
    for row in rows:
        print(f"| {row['benchmark']} | {row['what']} | {fmt(row.get('value'))} | "
              f"{row.get('unit', '')} | {fmt(row.get('naive'))} | "
              f"{fmt(row.get('ratio'), 2) + 'x' if row.get('ratio') else ''} | "
              f"{row.get('target', '')} |")


if __name__ == "__main__":
    main()
