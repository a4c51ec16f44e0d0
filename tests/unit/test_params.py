"""params.yaml validation: every kind of mistake is one readable line naming key, value, allowed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from textrnn.config import load_params
from textrnn.errors import ParamsError


def _params_with(tmp_path: Path, edit) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    edit(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_repository_params_are_valid():
    params = load_params()
    assert params.data.sentiment == "uci"
    assert abs(params.split.sentiment.train + params.split.sentiment.val
               + params.split.sentiment.test - 1) < 1e-9


@pytest.mark.parametrize(
    ("section", "edit", "expected"),
    [
        ("split", lambda p: p["split"]["sentiment"].update(train="lots"),
         "split.sentiment.train = 'lots' is invalid: Input should be a valid number"),
        ("fetch", lambda p: p["fetch"].update(retries=-1),
         "fetch.retries = -1 is invalid: Input should be greater than or equal to 0"),
        ("data", lambda p: p["data"].update(sentiment="twitter"),
         "data.sentiment = 'twitter' is invalid: Input should be 'uci', 'imdb' or 'custom'"),
        ("preprocess", lambda p: p["preprocess"]["charlm"].update(lowercas=True),
         "preprocess.charlm.lowercas is not a known key (allowed here: lowercase, min_chars)"),
        ("split", lambda p: p["split"]["charlm"].update(train=0.5),
         "split.charlm = {'test': 0.05, 'train': 0.5, 'val': 0.05} is invalid: "
         "train + val + test must add up to 1, got 0.6"),
        ("fetch", lambda p: p["fetch"].pop("timeout_s"), "fetch.timeout_s is missing"),
        ("train", lambda p: p["train"]["sentiment"].update(models=["lstm", "LSTM 2"]),
         "train.sentiment.models.1 = 'LSTM 2' is invalid: String should match pattern"),
        ("train", lambda p: p["train"]["sentiment"].update(models=["lstm", "gru", "lstm"]),
         "train.sentiment: models names ['lstm'] more than once"),
        ("data", lambda p: p.update(dataa={}), "dataa is not a known key (allowed here: "),
        ("preprocess", lambda p: p["preprocess"]["sentiment"].update(strip_html="yes"),
         "preprocess.sentiment.strip_html = 'yes' is invalid: Input should be a valid boolean"),
    ],
)
def test_each_kind_of_mistake_is_one_clear_line(tmp_path, section, edit, expected):
    path = _params_with(tmp_path, edit)
    with pytest.raises(ParamsError) as info:
        load_params(section, path=path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_a_stage_is_not_stopped_by_a_section_it_does_not_read(tmp_path):
    path = _params_with(tmp_path, lambda p: p["split"]["sentiment"].update(train="lots"))
    assert load_params("data", "fetch", path=path).data.sentiment == "uci"


def test_scientific_notation_reads_as_a_number(tmp_path):
    text = (ROOT / "params.yaml").read_text().replace("timeout_s: 60", "timeout_s: 6e1")
    path = tmp_path / "params.yaml"
    path.write_text(text)
    assert load_params("fetch", path=path).fetch.timeout_s == 60.0


def test_broken_yaml_is_one_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: [1,\n")
    with pytest.raises(ParamsError, match="not valid YAML") as info:
        load_params(path=path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("stage", ["fetch", "preprocess", "split"])
def test_stage_with_bad_params_exits_2_with_one_line_and_writes_nothing(tmp_path, stage):
    path = _params_with(tmp_path, lambda p: p["data"].update(sentiment="twitter"))
    proc = subprocess.run([sys.executable, "-m", f"stages.{stage}", "sentiment"], cwd=tmp_path,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"error: {path.name}: data.sentiment = 'twitter' is invalid: "
                     "Input should be 'uci', 'imdb' or 'custom'"]
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_stage_rejects_an_unknown_task(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "stages.split", "vision"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: usage: python -m stages.split {sentiment|charlm} "
                                   "(got vision)")
