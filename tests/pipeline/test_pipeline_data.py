"""End to end: `dvc repro` of the data stages in a throw-away copy of the repository."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest
from conftest import copy_repo, run_cmd
from fixtures import write_uci_zip

pytestmark = pytest.mark.e2e


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def repo(tmp_path_factory, mirror):
    repo = copy_repo(tmp_path_factory.mktemp("repo"))
    run_cmd(["dvc", "repro", "split@sentiment"], repo, env={"TEXTRNN_DATA_MIRROR": str(mirror)})
    return repo


def test_repro_split_writes_the_splits_and_leaves_dvc_status_clean(repo, mirror):
    sizes = {name: len(pd.read_parquet(repo / f"data/split/sentiment/{name}.parquet"))
             for name in ("train", "val", "test")}
    assert sum(sizes.values()) == 2979  # 3000 rows less 21 repeated ones
    assert sizes["test"] == pytest.approx(0.2 * 2979, abs=3)
    status = run_cmd(["dvc", "status", "--with-deps", "split@sentiment"], repo)
    assert "Data and pipelines are up to date." in status.stdout
    again = run_cmd(["dvc", "repro", "split@sentiment"], repo,
                    env={"TEXTRNN_DATA_MIRROR": str(mirror)})
    assert "Running stage" not in again.stdout


def test_bad_mirror_file_fails_in_one_line_and_leaves_data_as_it_was(repo, tmp_path):
    raw = repo / "data/raw/sentiment/sentiment_labelled_sentences.zip"
    before = _sha(raw)
    bad_mirror = tmp_path / "mirror"
    bad_mirror.mkdir()
    zipped = write_uci_zip(bad_mirror / "sentiment_labelled_sentences.zip")
    zipped.write_bytes(zipped.read_bytes()[:500])  # truncated
    proc = run_cmd(["dvc", "repro", "--force", "fetch@sentiment"], repo,
                   env={"TEXTRNN_DATA_MIRROR": str(bad_mirror)}, check=False)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors == ["error: sentiment_labelled_sentences.zip: not a readable zip archive "
                      "(truncated or corrupted?): File is not a zip file"]
    assert "Traceback" not in proc.stderr
    assert _sha(raw) == before
    assert sorted(p.name for p in raw.parent.iterdir()) == [raw.name]
    assert not [p for p in (repo / "data/raw").iterdir() if p.name.startswith(".")
                and p.name != ".gitignore"]


@pytest.mark.slow
def test_imdb_is_one_param_away(repo, mirror):
    run_cmd(["dvc", "exp", "run", "-S", "data.sentiment=imdb", "split@sentiment"], repo,
            env={"TEXTRNN_DATA_MIRROR": str(mirror)})
    test = pd.read_parquet(repo / "data/split/sentiment/test.parquet")
    train = pd.read_parquet(repo / "data/split/sentiment/train.parquet")
    assert set(test["origin"]) == {"test"} and len(test) > 24500
    assert set(train["origin"]) == {"train"} and 21000 < len(train) < 22600
    assert not test["text"].str.contains("<br", regex=False).any()


def test_a_three_class_table_of_your_own_runs_through_split(tmp_path):
    override = {"data": {"sentiment": "custom", "custom": {"sentiment": {
        "path": "examples/reviews.tsv", "text_column": "review", "label_column": "sentiment"}}}}
    repo = copy_repo(tmp_path / "repo", override)
    run_cmd(["dvc", "repro", "split@sentiment"], repo)
    splits = {n: pd.read_parquet(repo / f"data/split/sentiment/{n}.parquet")
              for n in ("train", "val", "test")}
    for part in splits.values():
        assert sorted(part["label"].unique()) == ["negative", "neutral", "positive"]
    assert sum(len(p) for p in splits.values()) == 90


def test_a_text_file_of_your_own_runs_through_split(tmp_path):
    override = {"data": {"charlm": "custom", "custom": {"charlm": {"path": "corpus.txt"}}},
                "preprocess": {"charlm": {"min_chars": 1000}}}
    repo = copy_repo(tmp_path / "repo", override)
    (repo / "corpus.txt").write_text("Una línea de prueba, con eñes y acentos.\n" * 100,
                                     encoding="utf-8")
    run_cmd(["dvc", "repro", "split@charlm"], repo)
    parts = [(repo / f"data/split/charlm/{n}.txt").read_text(encoding="utf-8")
             for n in ("train", "val", "test")]
    assert "".join(parts) == "Una línea de prueba, con eñes y acentos.\n" * 100
    assert [len(p) for p in parts] == [3690, 205, 205]
