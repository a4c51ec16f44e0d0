"""Parsers on small fixtures that reproduce every trap of the real files."""

from __future__ import annotations

import pytest
from fixtures import BOOK, TRAPS, gutenberg_text, uci_lines, write_imdb_tar, write_uci_zip

from textrnn.charlm import data as charlm_data
from textrnn.errors import DataError
from textrnn.sentiment import data as sentiment_data


def test_uci_parser_keeps_quoted_and_odd_line_break_sentences(tmp_path):
    frame = sentiment_data.read_uci(write_uci_zip(tmp_path / "uci.zip"))
    assert len(frame) == 3000
    assert frame.groupby("origin").size().to_dict() == {"amazon": 1000, "imdb": 1000, "yelp": 1000}
    texts = set(frame["text"])
    assert '"The best film ever," he said.  ' in texts
    assert "\"Not worth it... I'd say no." in texts
    assert "Line\u2028separator inside a sentence." in texts
    assert "Next\x85line inside a sentence." in texts
    first = frame.iloc[0]
    assert (first["label"], first["origin"]) == ("positive", "amazon")


def test_uci_wrong_row_count_names_file_and_counts(tmp_path):
    path = write_uci_zip(tmp_path / "uci.zip", contents={"yelp": uci_lines(499, traps=False)})
    with pytest.raises(DataError, match=r"uci.zip:yelp_labelled.txt: expected 1000 rows \(500 per "
                                        r"label\), found 998 \(negative: 499, positive: 499\)"):
        sentiment_data.read_uci(path)


def test_uci_bad_label_names_the_line(tmp_path):
    text = uci_lines().replace("good sentence number 3\t1", "good sentence number 3\tyes")
    with pytest.raises(DataError,
                       match=r"imdb_labelled.txt: line \d+: expected 'sentence<TAB>0\|1'"):
        sentiment_data.read_uci(write_uci_zip(tmp_path / "u.zip", contents={"imdb": text}))


def test_uci_non_utf8_names_file_and_line(tmp_path):
    data = uci_lines().encode("utf-8").replace(b"bad sentence number 7", b"bad sentence \xff 7")
    with pytest.raises(DataError, match=r"amazon_cells_labelled.txt: not valid UTF-8 at line \d+"):
        sentiment_data.read_uci(write_uci_zip(tmp_path / "u.zip", contents={"amazon": data}))


def test_uci_truncated_archive_is_rejected(tmp_path):
    path = write_uci_zip(tmp_path / "u.zip")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match="u.zip: not a readable zip archive"):
        sentiment_data.read_uci(path)


def test_imdb_parser_reads_splits_and_html_is_cleaned(tmp_path):
    frame = sentiment_data.read_imdb(write_imdb_tar(tmp_path / "imdb.tar.gz"))
    assert frame.groupby(["origin", "label"]).size().to_dict() == {
        ("test", "negative"): 12500, ("test", "positive"): 12500,
        ("train", "negative"): 12500, ("train", "positive"): 12500}
    cleaned, dropped = sentiment_data.clean(frame.head(3), strip_html=True, drop_duplicates=True)
    assert cleaned["text"].iloc[0] == "A fine film. Really & truly. test pos 0"
    assert dropped == 0


def test_imdb_short_and_truncated_archives_are_rejected(tmp_path):
    short = write_imdb_tar(tmp_path / "short.tar.gz", per_class=3)
    with pytest.raises(DataError, match=r"short.tar.gz:aclImdb/train: expected 25000 rows"):
        sentiment_data.read_imdb(short)
    full = write_imdb_tar(tmp_path / "cut.tar.gz")
    full.write_bytes(full.read_bytes()[:-4000])
    with pytest.raises(DataError, match="cut.tar.gz: not a readable tar.gz archive"):
        sentiment_data.read_imdb(full)


def test_imdb_unlabelled_reviews_are_read_in_id_order_and_a_copy_without_them_is_named(
        tmp_path, monkeypatch):
    monkeypatch.setattr(sentiment_data, "IMDB_UNLABELLED", 12)
    path = write_imdb_tar(tmp_path / "imdb.tar.gz", per_class=2, unlabelled=12)
    texts = sentiment_data.read_imdb_unlabelled(path)
    assert [text.rsplit(" ", 1)[1] for text in texts] == [str(i) for i in range(12)]
    assert all("unsup" in text for text in texts)
    without = write_imdb_tar(tmp_path / "old.tar.gz", per_class=2)
    with pytest.raises(DataError, match=r"old.tar.gz:aclImdb/train/unsup holds 0 reviews, "
                                        r"expected 12 .*embeddings.unlabelled: false"):
        sentiment_data.read_imdb_unlabelled(without)


def test_clean_folds_whitespace_and_drops_duplicates_of_same_label():
    import pandas as pd

    frame = pd.DataFrame({
        "text": ["Great  phone!", "great phone!", "great phone!", "  ", "Bad."],
        "label": ["positive", "positive", "negative", "positive", "negative"],
        "origin": ["amazon"] * 5,
    })
    cleaned, dropped = sentiment_data.clean(frame, strip_html=False, drop_duplicates=True)
    assert cleaned["text"].tolist() == ["Great phone!", "great phone!", "Bad."]
    assert dropped == 1  # the empty text is not a duplicate; the conflicting label stays


def test_gutenberg_stripping_removes_bom_crlf_header_and_footer():
    raw = gutenberg_text()
    assert raw.startswith("\ufeff") and "\r\n" in raw
    book = charlm_data.strip_gutenberg(raw)
    assert book == BOOK
    assert "\r" not in book and "Licence" not in book and "\ufeff" not in book


def test_gutenberg_missing_marker_is_an_error(tmp_path):
    path = tmp_path / "pg.txt"
    path.write_text(gutenberg_text().replace("*** END OF", "END OF"), encoding="utf-8")
    with pytest.raises(DataError, match=r"pg.txt: the '\*\*\* END OF THE PROJECT GUTENBERG EBOOK' "
                                        "marker is missing"):
        charlm_data.read_gutenberg(path)


def test_gutenberg_non_utf8_is_an_error(tmp_path):
    path = tmp_path / "pg.txt"
    path.write_bytes(gutenberg_text().encode("latin-1", errors="replace")
                     .replace(b"lugar", b"lug\xe1r"))
    with pytest.raises(DataError, match=r"pg.txt: not valid UTF-8 at line"):
        charlm_data.read_gutenberg(path)


def test_contiguous_split_covers_every_character_once():
    text = "".join(chr(97 + i % 26) for i in range(1001))
    parts = charlm_data.split_contiguous(text, train=0.9, val=0.05)
    assert "".join(parts[n] for n in ("train", "val", "test")) == text
    assert [len(parts[n]) for n in ("train", "val", "test")] == [900, 50, 51]


def test_clean_lowercases_on_request():
    assert charlm_data.clean("Hola  \nMUNDO\n\n\n\nfin", lowercase=True) == "hola\nmundo\n\nfin"


def test_traps_fixture_really_contains_the_traps():
    # Guards the fixture itself: a CSV reader and str.splitlines would both mis-read it.
    import io

    import pandas as pd

    text = "\n".join(TRAPS)
    assert len(text.splitlines()) > len(TRAPS)
    try:
        rows = len(pd.read_csv(io.StringIO(text), sep="\t", header=None))
    except pd.errors.ParserError:
        rows = 0  # the open quote swallowed the rest of the file
    assert rows < len(TRAPS)
