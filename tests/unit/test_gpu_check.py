"""benchmarks/gpu_check.py --quick as a user runs it: on a machine without a GPU every check
that needs none passes, and the GPU-only lines say they were skipped (docs/gpu.md)."""

from __future__ import annotations

import json
import sys

from conftest import ROOT, run_cmd

RECURRENT = ("simple_rnn", "lstm", "gru", "bilstm")
GPU_ONLY = ("cudnn", "mixed precision")


def test_gpu_check_runs_on_cpu(mirror, tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = run_cmd([sys.executable, "benchmarks/gpu_check.py", "--quick", "--json", str(out)],
                   ROOT, env={"TEXTRNN_DATA_MIRROR": str(mirror)}, timeout=600)   # exit 0
    report = json.loads(out.read_text(encoding="utf-8"))
    checks = {check["name"]: check for check in report["checks"]}
    printed = {line.split("[", 1)[0].strip(): line for line in proc.stdout.splitlines()
               if "[" in line}
    assert report["passed"] is True

    for kind in RECURRENT:
        check = checks[f"sentiment {kind}"]
        figures = check["figures"]
        assert check["status"] == "ok", check["line"]
        assert figures["epoch_seconds"] > 0 and figures["texts_per_second"] > 0
        assert figures["kernels"] and all(isinstance(k, str) and k for k in
                                          figures["kernels"].values()), figures["kernels"]
        # the texts that standardise to nothing got a probability per class, like any other
        assert len(figures["empty_texts_probabilities"]) >= 4
        assert all(abs(sum(row) - 1) < 1e-3 for row in figures["empty_texts_probabilities"])
        assert "s (tracing included)" in printed[f"sentiment {kind}"]
    assert len(checks["sentiment bilstm"]["figures"]["kernels"]) == 2   # both directions

    service = checks["service"]["figures"]
    assert checks["service"]["status"] == "ok", checks["service"]["line"]
    assert service["startup_seconds"] > 0 and service["status"] == 200
    assert service["predictions"] == len(service["texts"]) and "!!!" in service["texts"]
    assert (service["empty_text_status"], service["empty_text_code"]) == (400, "empty_text")

    charlm = checks["charlm lstm"]
    assert charlm["status"] == "ok", charlm["line"]
    assert charlm["figures"]["characters_per_second"] > 0 and charlm["figures"]["kernels"]
    assert "characters/s" in printed["charlm lstm"]

    determinism = checks["determinism"]
    assert determinism["status"] == "ok" and determinism["figures"]["ran"] is True, \
        determinism["line"]

    gpus = checks["device"]["figures"]["gpus"]
    for name in GPU_ONLY:
        if gpus:
            assert checks[name]["status"] == "ok", checks[name]["line"]
        else:
            assert checks[name]["status"] == "skipped: no GPU"
            assert "[skipped: no GPU]" in printed[name]
    if not gpus:   # without a GPU no layer claims cuDNN's kernel
        kernels = [kernel for kind in RECURRENT
                   for kernel in checks[f"sentiment {kind}"]["figures"]["kernels"].values()]
        assert "cudnn" not in kernels
