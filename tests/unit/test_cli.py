"""The one `textrnn` command: a subcommand for each job a person runs by hand."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from conftest import ROOT

from textrnn.cli import build_parser, main


def test_every_hand_run_job_is_a_subcommand():
    commands = build_parser()._subparsers._group_actions[0].choices
    assert set(commands) == {"serve", "generate", "report", "ui", "tune-worker"}
    args = build_parser().parse_args(["tune-worker", "charlm", "gru"])
    assert (args.task, args.model) == ("charlm", "gru")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["tune-worker", "vision", "gru"])


def test_tune_worker_outside_the_repository_is_one_clear_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(["tune-worker", "sentiment", "lstm"])
    assert info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "error: run `textrnn tune-worker` in the repository's root folder "
        "(stages/tune_sentiment.py is not here)")


def test_tune_worker_runs_the_stage_as_a_worker_and_passes_its_errors_on(tmp_path):
    """A model the params do not list: the stage's own one-line error and exit code 2."""
    proc = subprocess.run([sys.executable, "-m", "textrnn", "tune-worker", "sentiment",
                           "transformer"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "error: 'transformer' is not in train.sentiment.models")


def test_ui_over_a_tracking_server_points_to_its_own_page(tmp_path, monkeypatch, capsys):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["tracking"]["uri"] = "http://127.0.0.1:5999"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    main(["ui", "--params", str(tmp_path / "params.yaml")])
    assert "tracking server http://127.0.0.1:5999: open it in a browser" in capsys.readouterr().out
