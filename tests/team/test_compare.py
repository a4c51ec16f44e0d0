"""`make report`: the workspace compared with the previous commit (Markdown + plots HTML)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import run_cmd

from textrnn import compare

DVC_YAML = """\
stages:
  evaluate_sentiment:
    cmd: python -c "print('metrics are written by hand in this test')"
    params:
    - train.sentiment.tfidf_logreg.C
    metrics:
    - metrics/sentiment.json:
        cache: false
    outs:
    - models/sentiment/champion.json:
        cache: false
    plots:
    - plots/history.csv:
        cache: false
        x: epoch
        y: val_accuracy
"""


def write_run(repo, *, C, accuracy, champion, curve):
    (repo / "params.yaml").write_text(f"train:\n  sentiment:\n    tfidf_logreg:\n      C: {C}\n")
    metrics = {"dummy": {"accuracy": 0.5, "f1": 0.0, "ci": {"accuracy": [0.45, 0.55]}},
               "tfidf_logreg": {"accuracy": accuracy, "f1": accuracy - 0.01}}
    (repo / "metrics").mkdir(exist_ok=True)
    (repo / "metrics/sentiment.json").write_text(json.dumps(metrics))
    (repo / "models/sentiment").mkdir(parents=True, exist_ok=True)
    (repo / "models/sentiment/champion.json").write_text(json.dumps({"model": champion}))
    (repo / "plots").mkdir(exist_ok=True)
    (repo / "plots/history.csv").write_text(
        "epoch,val_accuracy\n" + "".join(f"{i},{v}\n" for i, v in enumerate(curve, 1)))
    meta = repo / "models/sentiment/tfidf_logreg/model/meta.json"
    meta.parent.mkdir(parents=True, exist_ok=True)
    meta.write_text(json.dumps({"task": "sentiment", "model": "tfidf_logreg",
                                "mlflow_run_id": f"run-C{C}"}))


def git_commit(repo, message):
    run_cmd(["git", "add", "-A"], repo)
    run_cmd(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message], repo)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """Two committed runs: C=10 (tfidf 0.80, champion dummy) then C=0.5 (0.84, champion tfidf)."""
    repo = tmp_path_factory.mktemp("compare")
    run_cmd(["git", "init", "-q"], repo)
    run_cmd([sys.executable, "-m", "dvc", "init", "-q"], repo)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    write_run(repo, C=10.0, accuracy=0.80, champion="dummy", curve=[0.6, 0.7, 0.8])
    git_commit(repo, "first run")
    write_run(repo, C=0.5, accuracy=0.84, champion="tfidf_logreg", curve=[0.65, 0.8, 0.84])
    return repo


@pytest.fixture(scope="module")
def report(repo, tmp_path_factory):
    """make_report on the uncommitted second run, with stand-ins for the vega bundles."""
    cache = tmp_path_factory.mktemp("vega")
    for name, version in compare.VEGA_PACKAGES.items():
        (cache / f"{name}-{version}.min.js").write_text(f"window.{name.replace('-', '_')} = 1;")
    return compare.make_report(repo, tmp_path_factory.mktemp("out") / "reports",
                               vega_cache=cache, fetch_vega=False)


def test_report_compares_params_champions_and_metrics_with_the_baseline(report):
    text = report.read_text()
    assert text.startswith("# Workspace compared with HEAD\n")
    assert "| `train.sentiment.tfidf_logreg.C` | 10 | 0.5 |" in text
    assert "| sentiment | dummy | tfidf_logreg |" in text
    # the model table: baseline -> workspace with the change, one value when unchanged
    assert "| tfidf_logreg | 0.8 → 0.84 (+0.04) | 0.79 → 0.83 (+0.04) | `run-C0.5` |" in text
    assert "| dummy | 0.5 | 0 | — |" in text
    assert "| metrics/sentiment.json | `tfidf_logreg.accuracy` | 0.8 | 0.84 | 0.04 |" in text
    assert "`dummy.accuracy`" not in text.split("## Every metric that changed")[1]
    for page in ("plots/index.html", "plots_diff/index.html"):
        assert f"]({page})" in text
        assert (report.parent / page).is_file()


def test_plots_diff_page_holds_both_revisions(report):
    page = (report.parent / "plots_diff/index.html").read_text()
    assert "HEAD" in page and "workspace" in page
    assert '"val_accuracy": "0.84"' in page or '"val_accuracy":"0.84"' in page
    assert '"val_accuracy": "0.7"' in page or '"val_accuracy":"0.7"' in page


def test_html_inlines_the_vega_scripts_when_available(report):
    page = (report.parent / "plots/index.html").read_text()
    assert "window.vega_embed = 1;" in page and "window.vega_lite = 1;" in page
    assert "cdn.jsdelivr.net" not in page          # nothing to fetch: works offline
    assert "vegaEmbed(" in page                    # DVC's own embedding code is still there


def test_after_a_commit_the_report_compares_with_the_commit_before(repo, report, tmp_path):
    git_commit(repo, "second run")
    try:
        text = compare.make_report(repo, tmp_path / "out", vega_cache=tmp_path / "none",
                                   fetch_vega=False).read_text()
    finally:
        run_cmd(["git", "reset", "-q", "--soft", "HEAD~1"], repo)   # the fixture's state again
    assert text.startswith("# Workspace compared with HEAD~1\n")
    assert "| tfidf_logreg | 0.8 → 0.84 (+0.04)" in text
    assert "cdn.jsdelivr.net" in (tmp_path / "out/plots/index.html").read_text()  # no vega: CDN


def test_without_vega_scripts_the_page_falls_back_to_dvcs_cdn_tags(tmp_path):
    assert "{scripts}" in compare.html_template(None)
    js = tmp_path / "x.js"
    js.write_text("var s = '</script>';")
    page = compare.html_template([js])
    assert "{scripts}" not in page and "{plot_divs}" in page
    assert "'<\\/script>'" in page                  # cannot close the inline script early


def test_no_commit_to_compare_with_is_one_clear_line(tmp_path):
    run_cmd(["git", "init", "-q"], tmp_path)
    run_cmd([sys.executable, "-m", "dvc", "init", "-q"], tmp_path)
    proc = subprocess.run([sys.executable, "-m", "textrnn", "report"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == \
        "error: no commit to compare with: commit a run first (git commit)"
