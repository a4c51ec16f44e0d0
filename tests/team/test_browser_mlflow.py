"""Comparing two runs as a user does, in headless Chromium: the MLflow UI's compare-runs page and
the `dvc plots show` page that `make report` writes. Screenshots go to test-artifacts/.

The real sentiment pipeline runs twice in a throw-away copy of the repository (two cheap models,
see tiny_pipeline.py): once as committed, once with `dvc exp run -S` changing one param.
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse

import pytest
import yaml
from conftest import ROOT, run_cmd
from tiny_pipeline import TARGET, MlflowServer, commit, make_repo, repro

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Debian's Chromium through Debian's chromedriver: no tool downloads a browser of its own."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        message = "chromium and chromium-driver are not installed (apt-get install them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    os.environ["SE_OFFLINE"] = "true"          # Selenium Manager must not fetch anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
                 "--window-size=1400,2200"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(120)
    driver.set_script_timeout(60)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, mirror):
    """The repository after two pipeline runs: C=10 (committed), then C=0.5 via dvc exp run."""
    repo = make_repo(tmp_path_factory.mktemp("browser") / "repo", "sqlite:///mlflow.db")
    env = {"TEXTRNN_DATA_MIRROR": str(mirror)}
    repro(repo, env)
    commit(repo, "first run: tfidf_logreg C=10")
    run_cmd(["dvc", "exp", "run", "-S", "train.sentiment.defaults.tfidf_logreg.C=0.5", TARGET],
            repo, env=env, timeout=900)
    return repo


@pytest.fixture(scope="module")
def train_runs(two_runs):
    """The MLflow runs of the train stages, by model: {model: [runs, oldest first]}."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{two_runs / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("textrnn")
    runs = client.search_runs([experiment.experiment_id],
                              "tags.dvc_stage LIKE 'train_sentiment@%'",
                              order_by=["attributes.start_time ASC"])
    by_model: dict[str, list] = {}
    for run in runs:
        by_model.setdefault(run.data.tags["model"], []).append(run)
    return experiment.experiment_id, by_model


def test_each_run_links_to_its_commit_data_and_params(two_runs, train_runs):
    _, by_model = train_runs
    assert len(by_model["dummy"]) == 1                  # unchanged params: not retrained
    first, second = by_model["tfidf_logreg"]
    assert first.data.params["params.C"] == "10.0" and second.data.params["params.C"] == "0.5"
    lock = yaml.safe_load((two_runs / "dvc.lock").read_text())
    (split_out,) = [out for out in lock["stages"]["split@sentiment"]["outs"]
                    if out["path"] == "data/split/sentiment"]
    for run in (first, second, by_model["dummy"][0]):
        assert run.data.tags["dvc_dep.data/split/sentiment"] == split_out["md5"]
    assert first.data.tags["params_sha256"] != second.data.tags["params_sha256"]
    meta = json.loads((two_runs / "models/sentiment/tfidf_logreg/model/meta.json").read_text())
    assert meta["mlflow_run_id"] == second.info.run_id


def test_mlflow_compare_page_shows_the_models_and_a_metric(two_runs, train_runs, browser):
    from selenium.webdriver.support.ui import WebDriverWait

    experiment_id, by_model = train_runs
    runs = by_model["dummy"] + by_model["tfidf_logreg"]
    store = f"sqlite:///{two_runs / 'mlflow.db'}"
    with MlflowServer(two_runs / "mlflow-ui.log", "--backend-store-uri", store, command="ui") as ui:
        query = urllib.parse.urlencode({"runs": json.dumps([r.info.run_id for r in runs]),
                                        "experiments": json.dumps([experiment_id])})
        browser.get(f"{ui.url}/#/compare-runs?{query}")
        # innerText: also the rows of the metrics table scrolled out of its box
        body = lambda: browser.execute_script("return document.body.innerText")  # noqa: E731
        WebDriverWait(browser, 90).until(lambda _: "Comparing 3 Runs" in body()
                                         and "test/accuracy" in body())
        text = body()
        browser.save_screenshot(str(ARTIFACTS / "mlflow_compare_runs.png"))
    for run in runs:
        assert run.info.run_name in text                   # sentiment/dummy, sentiment/tfidf_logreg
        for metric in ("val/accuracy", "test/accuracy"):   # from train, and added by evaluate
            assert metric in text
            shown = _as_mlflow_shows(run.data.metrics[metric])
            assert f"\n{shown}\n" in f"\n{text}\n".replace("\t", "\n"), (metric, shown, text)
    assert "dummy" in text and "tfidf_logreg" in text       # the model param, side by side
    assert "0.5" in text and "10.0" in text                # and the C that differs


def _as_mlflow_shows(value: float) -> str:
    """The compare page rounds to 3 decimals and drops trailing zeros (0.5, 0.826)."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


def test_report_plots_render_as_charts_offline(two_runs, browser):
    run_cmd(["textrnn", "report"], two_runs, timeout=600)
    page = two_runs / "reports/plots/index.html"
    html = page.read_text()
    assert "cdn.jsdelivr.net" not in html, "vega JS was not inlined (is npm installed?)"
    report = (two_runs / "reports/compare.md").read_text()
    assert "| `train.sentiment.defaults.tfidf_logreg.C` | 10 | 0.5 |" in report
    assert "| tfidf_logreg |" in report and "| dummy |" in report

    browser.get_log("browser")                           # drop what earlier pages logged
    browser.get(page.as_uri())
    charts = browser.execute_async_script(_CHARTS_JS, _vega_ids(html))
    browser.save_screenshot(str(ARTIFACTS / "dvc_plots_show.png"))
    errors = [entry["message"] for entry in browser.get_log("browser")
              if entry["level"] == "SEVERE"]
    assert not errors, errors
    assert len(charts) == len(_vega_ids(html)) >= 4, charts
    failed = [c["id"] for c in charts if not c["drawn"]]
    assert not failed, f"vega-embed drew nothing in {failed}"
    painted = {c["id"]: c["painted"] for c in charts}
    # charts with data: the class balance and the confusion matrices are not blank
    for prefix in ("plots_data_sentiment_class_balance", "plots_sentiment_predictions"):
        hits = [v for k, v in painted.items() if k.startswith(prefix)]
        assert hits and min(hits) > 500, (prefix, painted)

    diff = two_runs / "reports/plots_diff/index.html"
    browser.get(diff.as_uri())
    charts = browser.execute_async_script(_CHARTS_JS, _vega_ids(diff.read_text()))
    browser.save_screenshot(str(ARTIFACTS / "dvc_plots_diff.png"))
    assert charts and all(c["drawn"] for c in charts), charts
    # the diff draws the baseline's confusion matrix beside the workspace's: twice the paint
    confusion = "plots_sentiment_predictions_tfidf_logreg_csv"
    diff_painted = {c["id"]: c["painted"] for c in charts}
    assert diff_painted[confusion] > 1.5 * painted[confusion], (diff_painted, painted)


def _vega_ids(html: str) -> list[str]:
    """The ids of the divs that DVC's page fills with ``vegaEmbed('#id', spec)``."""
    return re.findall(r"vegaEmbed\('#([^']+)'", html)


# For each div id given: did vega-embed draw a canvas or an SVG in it, and how many of its pixels
# are not blank (canvas) or how many marks it has (SVG)? Waits up to 30 s for all to be drawn.
_CHARTS_JS = """
const done = arguments[arguments.length - 1];
const divs = arguments[0].map(id => document.getElementById(id)).filter(d => d !== null);
const measure = () => divs.map(d => {
  const canvas = d.querySelector('canvas'), svg = d.querySelector('svg');
  let painted = 0;
  if (canvas && canvas.width > 0 && canvas.height > 0) {
    const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
  } else if (svg) {
    painted = svg.querySelectorAll('path, rect, line, text').length;
  }
  return {id: d.id, drawn: !!(canvas || svg), painted: painted};
});
const started = Date.now();
(function poll() {
  const charts = measure();
  if (charts.every(c => c.drawn) || Date.now() - started > 30000) done(charts);
  else setTimeout(poll, 250);
})();
"""
