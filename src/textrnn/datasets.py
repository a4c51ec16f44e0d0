"""The one list of datasets: every other list (params schema, fetch, preprocess, split, tests)
derives from it. Importable without TensorFlow or pandas.

A dataset is a raw file (its name and the upstream addresses tried in order), the reader that
turns it into what the task's preprocess takes (sentiment: a table of ``text``, ``label``,
``origin``; charlm: the text) and whether it ships its own test split (kept as the test split;
validation is then carved from its train part). The reader is also the content check of fetch:
a file it cannot read is refused, with the reader's one-line reason.

Adding a dataset is one :func:`register` call plus its reader. ``custom`` (your own file,
``data.custom.<task>``) is every task's too, read by :mod:`textrnn.data.custom`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textrnn.errors import UserError

CUSTOM = "custom"


def load_attribute(reference: str) -> Any:
    """``"package.module:attribute"`` -> the attribute (its module imported on first use)."""
    module, attribute = reference.split(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class Dataset:
    task: str                     # sentiment | charlm
    name: str
    filename: str                 # the raw file, as upstream names it (and the mirror holds it)
    urls: tuple[str, ...]         # upstream addresses, tried in order
    reader: str                   # "module:function": raw file -> table (sentiment) or text
    upstream_test: bool = False   # ships its own test split

    def read(self, path: Path) -> Any:
        return load_attribute(self.reader)(path)


_DATASETS: dict[str, Dataset] = {}


def register(dataset: Dataset) -> Dataset:
    if dataset.name in _DATASETS or dataset.name == CUSTOM:
        raise ValueError(f"dataset {dataset.name!r} is already declared")
    _DATASETS[dataset.name] = dataset
    return dataset


def names(task: str) -> tuple[str, ...]:
    """The datasets params.yaml's ``data.<task>`` may name, ``custom`` last."""
    return (*(d.name for d in _DATASETS.values() if d.task == task), CUSTOM)


def get_dataset(name: str) -> Dataset:
    """A declared dataset; an unknown name is an error listing the known ones."""
    if name not in _DATASETS:
        raise UserError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(_DATASETS))}")
    return _DATASETS[name]


register(Dataset(
    "sentiment", "uci", "sentiment_labelled_sentences.zip",
    ("https://archive.ics.uci.edu/static/public/331/sentiment+labelled+sentences.zip",
     "https://archive.ics.uci.edu/ml/machine-learning-databases/00331/"
     "sentiment%20labelled%20sentences.zip"),
    "textrnn.sentiment.data:read_uci"))
register(Dataset(
    "sentiment", "imdb", "aclImdb_v1.tar.gz",
    ("https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",),
    "textrnn.sentiment.data:read_imdb", upstream_test=True))
register(Dataset(
    "charlm", "quijote", "pg2000.txt",
    ("https://www.gutenberg.org/cache/epub/2000/pg2000.txt",),
    "textrnn.charlm.data:read_gutenberg"))
