"""Bad params at every stage's door: one line naming key, value and what is allowed; exit 2;
no traceback; nothing written. (Data files, prompts and model files have their own tests: see the
table in the README, "What you see when something is wrong".)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT


def _set(params: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    node = params
    for key in parents:
        node = node[key]
    node[last] = value


CASES = [
    ("fetch", ["sentiment"], "fetch.timeout_s", "soon",
     "fetch.timeout_s = 'soon' is invalid: Input should be a valid number"),
    ("preprocess", ["charlm"], "preprocess.charlm.min_chars", 0,
     "preprocess.charlm.min_chars = 0 is invalid: Input should be greater than or equal to 1"),
    ("split", ["sentiment"], "split.sentiment.val", 1.5,
     "split.sentiment.val = 1.5 is invalid: Input should be less than 1"),
    ("embed", [], "embeddings.dim", 1,
     "embeddings.dim = 1 is invalid: Input should be greater than or equal to 2"),
    # a model's params are checked where they are resolved, before any tune or train runs
    ("resolve", ["sentiment"], "train.sentiment.defaults.network.embedding_init", "glove",
     "train.sentiment.defaults.network.embedding_init = 'glove' is invalid: Input should be "
     "'pretrained' or 'random'"),
    ("resolve", ["sentiment"], "tune.sentiment.defaults.network.sampler", "annealing",
     "tune.sentiment.defaults.network.sampler = 'annealing' is invalid: Input should be 'grid', "
     "'random' or 'tpe'"),
    ("resolve", ["charlm"], "tune.charlm.models.gru", {"n_trials": 0},
     "tune.charlm.models.gru.n_trials = 0 is invalid: Input should be greater than or equal to 1"),
    ("resolve", ["sentiment"], "train.sentiment.variants.lstm", {"units": "many"},
     "train.sentiment.variants.lstm.units = 'many' is invalid: Input should be a valid integer"),
    ("resolve", ["charlm"], "train.charlm.variants.gru.learning_rate", -1.0,
     "train.charlm.variants.gru.learning_rate = -1.0 is invalid: Input should be greater than 0"),
    ("resolve", ["sentiment"], "train.sentiment.variants.lstm", {"kind": "transformer"},
     "unknown sentiment model kind 'transformer'; known kinds: dnn, dummy, gru, lm_lstm, lstm, "
     "simple_rnn, tfidf_logreg"),
    ("ensemble_sentiment", [], "train.sentiment.ensemble.members", ["lstm"],
     "train.sentiment.ensemble = {'members': ['lstm']} is invalid: members must name two or "
     "more different models, or none ([])"),
    ("ensemble_sentiment", [], "train.sentiment.models", ["dummy", "lstm", "gru"],
     "train.sentiment: ensemble.members ['dnn', 'simple_rnn', 'bilstm'] are not in models "
     "['dummy', 'lstm', 'gru']: an ensemble averages trained models only"),
    ("ensemble_sentiment", [], "train.sentiment.ensemble.members", ["lstm", "transformer"],
     "train.sentiment: ensemble.members ['transformer'] are not in models ['dummy', "
     "'tfidf_logreg', 'dnn', 'simple_rnn', 'lstm', 'gru', 'bilstm']: an ensemble averages "
     "trained models only"),
    ("resolve", ["sentiment"], "train.sentiment.ensemble.members", ["dummy", "lstm"],
     "train.sentiment.ensemble.members ['dummy'] are not neural models: the ensemble averages "
     "Keras networks only"),
    ("evaluate_sentiment", [], "evaluate.sentiment.confidence", 2,
     "evaluate.sentiment.confidence = 2 is invalid: Input should be less than 1"),
    ("evaluate_charlm", [], "evaluate.charlm.beam_width", 0,
     "evaluate.charlm.beam_width = 0 is invalid: Input should be greater than or equal to 1"),
    ("evaluate_charlm", [], "evaluate.charlm.top_p", 1.5,
     "evaluate.charlm.top_p = 1.5 is invalid: Input should be less than or equal to 1"),
]


def _run_stage(cwd: Path, module: str, args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"stages.{module}", *args], cwd=cwd,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                               "TF_CPP_MIN_LOG_LEVEL": "3"},
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(("module", "args", "key", "value", "expected"), CASES,
                         ids=[f"{case[0]}-{case[2].rsplit('.', 1)[-1]}" for case in CASES])
def test_every_stage_refuses_bad_params_in_one_line_and_writes_nothing(tmp_path, module, args,
                                                                       key, value, expected):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    _set(params, key, value)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = _run_stage(tmp_path, module, args)
    assert proc.returncode == 2, proc.stderr[-2000:]
    message = expected if expected.startswith("unknown") else f"params.yaml: {expected}"
    assert proc.stderr.strip().splitlines() == [f"error: {message}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


@pytest.mark.parametrize("module", ["train_sentiment", "tune_sentiment", "train_charlm"])
def test_an_unknown_model_name_lists_the_known_ones(tmp_path, module):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    proc = _run_stage(tmp_path, module, ["transformer"])
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("error: ") and "transformer" in line and "lstm" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]
