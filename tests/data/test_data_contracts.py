"""Data contracts on the real files from the mirror: counts, balance, markers, splits."""

from __future__ import annotations

import pytest

from textrnn.charlm import data as charlm_data
from textrnn.data.splitting import split_table
from textrnn.sentiment import data as sentiment_data
from textrnn.sentiment.data import normalise_for_dedup


@pytest.fixture(scope="module")
def uci(mirror):
    return sentiment_data.read_uci(mirror / "sentiment_labelled_sentences.zip")


def test_uci_has_1000_rows_per_file_500_per_label(uci):
    assert len(uci) == 3000
    counts = uci.groupby(["origin", "label"]).size()
    assert counts.to_dict() == {(o, lab): 500 for o in ("amazon", "imdb", "yelp")
                                for lab in ("negative", "positive")}


def test_uci_holds_19_repeated_texts_in_40_rows(uci):
    keys = uci["text"].map(normalise_for_dedup)
    repeated = keys.value_counts()
    repeated = repeated[repeated > 1]
    assert (len(repeated), int(repeated.sum())) == (19, 40)


@pytest.mark.parametrize("drop_duplicates", [True, False])
def test_uci_split_is_stratified_and_duplicates_never_straddle(uci, drop_duplicates):
    table, _ = sentiment_data.clean(uci, strip_html=True, drop_duplicates=drop_duplicates)
    splits, dropped = split_table(table, train=0.7, val=0.1, test=0.2, upstream_val_fraction=0.1,
                                  has_upstream_test=False, seed=42)
    assert dropped == 0
    assert sum(len(s) for s in splits.values()) == len(table)
    keys = {name: set(part["text"].map(normalise_for_dedup)) for name, part in splits.items()}
    assert not keys["train"] & keys["val"]
    assert not keys["train"] & keys["test"]
    assert not keys["val"] & keys["test"]
    for name, share in (("train", 0.7), ("val", 0.1), ("test", 0.2)):
        assert abs(len(splits[name]) / len(table) - share) < 0.01
        balance = splits[name].groupby(["origin", "label"]).size() / len(splits[name])
        assert balance.between(1 / 6 - 0.02, 1 / 6 + 0.02).all(), balance


def test_uci_split_is_reproducible_and_seed_dependent(uci):
    kwargs = dict(train=0.7, val=0.1, test=0.2, upstream_val_fraction=0.1, has_upstream_test=False)
    first, _ = split_table(uci, seed=1, **kwargs)
    again, _ = split_table(uci, seed=1, **kwargs)
    other, _ = split_table(uci, seed=2, **kwargs)
    assert first["test"].equals(again["test"])
    assert set(first["test"]["text"]) != set(other["test"]["text"])


def test_imdb_has_12500_per_class_per_split_and_keeps_upstream_test(mirror):
    frame = sentiment_data.read_imdb(mirror / "aclImdb_v1.tar.gz")
    assert frame.groupby(["origin", "label"]).size().to_dict() == {
        (s, lab): 12500 for s in ("train", "test") for lab in ("negative", "positive")}
    table, removed = sentiment_data.clean(frame, strip_html=True, drop_duplicates=True)
    assert not table["text"].str.contains("<br", regex=False).any()
    splits, dropped = split_table(table, train=0.7, val=0.1, test=0.2, upstream_val_fraction=0.1,
                                  has_upstream_test=True, seed=42)
    assert (splits["test"]["origin"] == "test").all()
    assert len(splits["test"]) == (table["origin"] == "test").sum()
    assert abs(len(splits["val"]) / (len(splits["train"]) + len(splits["val"])) - 0.1) < 0.005
    test_keys = set(splits["test"]["text"].map(normalise_for_dedup))
    assert not set(splits["train"]["text"].map(normalise_for_dedup)) & test_keys
    # Upstream train and test share some reviews: the test copy is the one kept.
    test_texts = table[table["origin"] == "test"]["text"].map(normalise_for_dedup)
    assert len(splits["test"]) == test_texts.nunique() > 24500
    _, dropped_raw = split_table(frame, train=0.7, val=0.1, test=0.2, upstream_val_fraction=0.1,
                                 has_upstream_test=True, seed=42)
    assert dropped_raw > 0


def test_quijote_is_about_2_1_million_characters_of_spanish(mirror):
    book = charlm_data.read_gutenberg(mirror / "pg2000.txt")
    assert 2_000_000 < len(book) < 2_200_000
    assert "\r" not in book and "\ufeff" not in book and "Gutenberg" not in book[:2000]
    assert book.startswith("El ingenioso hidalgo don Quijote de la Mancha")
    assert "En un lugar de la Mancha, de cuyo nombre no quiero acordarme" in book[:60000]
    assert book.count("ñ") > 1000


def test_imdb_unlabelled_reviews_are_50000_and_641_repeat_a_labelled_one(mirror):
    """The embed stage leaves out those that repeat a held-out text (case and spacing folded)."""
    texts = sentiment_data.read_imdb_unlabelled(mirror / "aclImdb_v1.tar.gz")
    assert len(texts) == 50000 and all(texts)
    labelled = set(sentiment_data.read_imdb(mirror / "aclImdb_v1.tar.gz")["text"]
                   .map(normalise_for_dedup))
    shared = sum(normalise_for_dedup(text) in labelled for text in texts)
    assert shared == 641
