"""Datasets are declared once (textrnn.datasets): the params schema and fetch take their lists
from there, and a new dataset is one declaration plus its reader."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from conftest import ROOT

from textrnn import datasets
from textrnn.config import load_params
from textrnn.data import sources
from textrnn.errors import DataError, ParamsError


def read_tiny_reviews(path):
    """The throw-away dataset's reader: ``text<TAB>label`` lines; also fetch's content check."""
    name = path.name.split(".tmp")[0].lstrip(".")   # fetch validates under a temporary name
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]
    if not rows or any(len(row) != 2 for row in rows):
        raise DataError(f"{name}: expected text<TAB>label on every line")
    return pd.DataFrame({"text": [r[0] for r in rows], "label": [r[1] for r in rows],
                         "origin": "tiny"})


@pytest.fixture
def tiny_reviews(monkeypatch):
    dataset = datasets.Dataset("sentiment", "tiny_reviews", "tiny.tsv",
                               ("http://127.0.0.1:9/tiny.tsv",),
                               "test_datasets:read_tiny_reviews", upstream_test=False)
    monkeypatch.setattr(datasets, "_DATASETS", dict(datasets._DATASETS))
    datasets.register(dataset)
    return dataset


def test_the_declared_datasets_are_what_params_accept():
    assert datasets.names("sentiment") == ("uci", "imdb", "custom")
    assert datasets.names("charlm") == ("quijote", "custom")
    assert (datasets.get_dataset("imdb").upstream_test
            and not datasets.get_dataset("uci").upstream_test)


def test_a_new_dataset_is_one_declaration_plus_its_reader(tiny_reviews, tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["sentiment"] = "tiny_reviews"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert load_params("data", path=tmp_path / "params.yaml").data.sentiment == "tiny_reviews"

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "tiny.tsv").write_text("great film\tpositive\nawful plot\tnegative\n")
    path = sources.fetch("tiny_reviews", tmp_path / "raw", timeout_s=1, retries=0,
                         mirror=str(mirror))
    assert list(tiny_reviews.read(path).label) == ["positive", "negative"]

    (mirror / "tiny.tsv").write_text("no tab here\n")       # the reader is fetch's check
    with pytest.raises(DataError, match="tiny.tsv: expected text<TAB>label"):
        sources.fetch("tiny_reviews", tmp_path / "raw2", timeout_s=1, retries=0,
                      mirror=str(mirror))


def test_an_undeclared_dataset_is_refused_in_one_line(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["charlm"] = "shakespeare"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match="data.charlm = 'shakespeare' is invalid: Input should "
                                          "be 'quijote' or 'custom'"):
        load_params("data", path=tmp_path / "params.yaml")
