"""A user's own data: every validation failure says what is wrong, where, and writes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import ROOT
from fixtures import gutenberg_text

from textrnn.config import CustomTableParams, CustomTextParams
from textrnn.data import custom
from textrnn.errors import DataError

TABLE = dict(path="", text_column="review", label_column="stars", split_column=None, sep="auto",
             encoding="utf-8", quoting="minimal", on_empty="fail", max_megabytes=100.0)


def cfg(**changes) -> CustomTableParams:
    return CustomTableParams(**{**TABLE, **changes})


def three_class_rows(n: int = 12) -> list[str]:
    words = {"good": "great fun", "bad": "dull and slow", "meh": "fine I guess"}
    return [f"{text} {i}\t{label}" for i in range(n) for label, text in words.items()]


def write(path: Path, lines: list[str], header: str = "review\tstars") -> Path:
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def test_three_string_classes_from_a_tsv(tmp_path):
    table, dropped = custom.load_table(write(tmp_path / "r.tsv", three_class_rows()), cfg())
    assert dropped == 0
    assert sorted(table["label"].unique()) == ["bad", "good", "meh"]
    assert table.columns.tolist() == ["text", "label", "origin"]
    assert (table["origin"] == "custom").all()


def test_separator_is_sniffed_and_integer_labels_become_strings(tmp_path):
    lines = [f'"text, with comma {i}";{i % 3}' for i in range(30)]
    path = write(tmp_path / "data.txt", lines, header="review;stars")
    table, _ = custom.load_table(path, cfg())
    assert table["text"].iloc[0] == "text, with comma 0"
    assert sorted(table["label"].unique()) == ["0", "1", "2"]


def test_parquet_is_read(tmp_path):
    path = tmp_path / "d.parquet"
    pd.DataFrame({"review": ["a", "b", "c", "d"], "stars": [1, 2, 1, 2]}).to_parquet(path)
    table, _ = custom.load_table(path, cfg())
    assert table["label"].tolist() == ["1", "2", "1", "2"]


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope.csv: file not found"):
        custom.load_table(tmp_path / "nope.csv", cfg())


def test_unreadable_file(tmp_path):
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(DataError, match=r"folder.csv: cannot be read: Is a directory"):
        custom.load_table(tmp_path / "folder.csv", cfg())


def test_wrong_encoding_names_the_line(tmp_path):
    path = tmp_path / "r.tsv"
    path.write_bytes(b"review\tstars\ngood\t1\ncaf\xe9 au lait\t0\n")
    with pytest.raises(DataError, match=r"r.tsv: not valid utf-8 at line 3 \(byte 23\)"):
        custom.load_table(path, cfg())
    table, _ = custom.load_table(path, cfg(encoding="latin-1"))
    assert table["text"].tolist() == ["good", "café au lait"]


def test_absent_column_lists_the_columns(tmp_path):
    path = write(tmp_path / "r.tsv", three_class_rows(), header="body\tstars")
    with pytest.raises(DataError, match=r"r.tsv: column 'review' not found; the columns are: "
                                        r"'body', 'stars'"):
        custom.load_table(path, cfg())


def test_empty_texts_are_counted_and_fail_or_drop(tmp_path):
    path = write(tmp_path / "r.tsv", three_class_rows() + ["\tgood", "  \tbad", "text\t"])
    with pytest.raises(DataError, match=r"r.tsv: 3 rows with an empty text or label \(first at "
                                        r"lines \[38, 39, 40\]\); set data.custom.on_empty: drop"):
        custom.load_table(path, cfg())
    table, dropped = custom.load_table(path, cfg(on_empty="drop"))
    assert (dropped, len(table)) == (3, 36)


def test_single_class_is_refused(tmp_path):
    path = write(tmp_path / "r.tsv", [f"text {i}\tgood" for i in range(20)])
    with pytest.raises(DataError, match=r"r.tsv: every row has the label 'good'; a classifier "
                                        r"needs at least two classes"):
        custom.load_table(path, cfg())


def test_class_too_small_for_the_split(tmp_path):
    table = pd.DataFrame({"text": list("abcdefghijklmn"), "label": ["x"] * 10 + ["y"] * 4,
                          "origin": "custom"})
    with pytest.raises(DataError, match=r"data.parquet: class 'y' has 4 examples; the split needs "
                                        r"at least 10 per class so that each split gets one"):
        custom.check_classes(table, "data.parquet", smallest_fraction=0.1)


def test_split_column_with_unknown_values(tmp_path):
    rows = [f"{line}\t{'train' if i % 4 else 'validation'}" for i, line in
            enumerate(three_class_rows())]
    path = write(tmp_path / "r.tsv", rows, header="review\tstars\tfold")
    with pytest.raises(DataError, match=r"r.tsv: split column 'fold' holds unknown values "
                                        r"\['validation'\]; allowed: train, val, test"):
        custom.load_table(path, cfg(split_column="fold"))


def test_file_over_the_memory_budget_is_refused_up_front(tmp_path):
    path = write(tmp_path / "r.tsv", three_class_rows(2000))
    with pytest.raises(DataError, match=r"r.tsv: 0 MB is over the memory budget of 0.01 MB"):
        custom.load_table(path, cfg(max_megabytes=0.01))


def test_malformed_csv_names_the_line(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("review,stars\ngood,1\nbad,0,extra\n")
    with pytest.raises(DataError, match=r"r.csv: Error tokenizing data. C error: Expected 2 fields "
                                        r"in line 3, saw 3"):
        custom.load_table(path, cfg())


def test_text_folder_is_joined_and_gutenberg_markers_stripped_only_when_present(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.txt").write_bytes(gutenberg_text("Primero.\n").encode("utf-8"))
    (folder / "b.txt").write_text("Segundo *** sin marcas.\r\n", encoding="utf-8")
    (folder / "notes.bin").write_bytes(b"\x00\x01")
    text = custom.load_text(folder, CustomTextParams(path="", encoding="utf-8", max_megabytes=1))
    assert text == "Primero.\n\nSegundo *** sin marcas.\n"


def test_fetch_stage_with_a_bad_custom_file_writes_nothing(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["sentiment"] = "custom"
    params["data"]["custom"]["sentiment"].update(path="reviews.tsv", text_column="review",
                                                 label_column="stars")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    write(tmp_path / "reviews.tsv", [f"text {i}\tgood" for i in range(20)])
    proc = subprocess.run([sys.executable, "-m", "stages.fetch", "sentiment"], cwd=tmp_path,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: reviews.tsv: every row has the label 'good'; a "
                                   "classifier needs at least two classes")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml", "reviews.tsv"]


SUBTITLES = ("\ufeff1\r\n"
             "00:00:01,000 --> 00:00:02,500\r\n"
             "<i>En un lugar de la Mancha,</i>\r\n"
             "de cuyo nombre no quiero acordarme.\r\n"
             "\r\n"
             "2\r\n"
             "00:00:03.000 --> 00:00:05.250 X1:10 X2:20\r\n"
             "{\\an8}—¿Quién <b>va</b> allá?\r\n"
             "<font color=\"#ffff00\">—Sancho.</font>")          # no final blank line


def text_params(**changes) -> CustomTextParams:
    return CustomTextParams(**{"path": "", "encoding": "utf-8", "max_megabytes": 1, **changes})


def test_subtitle_file_gives_its_dialogue_only(tmp_path):
    path = tmp_path / "quijote.srt"
    path.write_bytes(SUBTITLES.encode("utf-8"))
    assert custom.load_text(path, text_params()) == (
        "En un lugar de la Mancha,\nde cuyo nombre no quiero acordarme.\n"
        "—¿Quién va allá?\n—Sancho.\n")


def test_folder_mixing_text_and_subtitle_files(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.txt").write_text("Primero.\n", encoding="utf-8")
    (folder / "b.srt").write_bytes(SUBTITLES.encode("utf-8"))
    (folder / "c.TXT").write_text("Último.", encoding="utf-8")
    assert custom.load_text(folder, text_params()) == (
        "Primero.\n\nEn un lugar de la Mancha,\nde cuyo nombre no quiero acordarme.\n"
        "—¿Quién va allá?\n—Sancho.\n\nÚltimo.\n")


def test_subtitle_file_without_a_cue_is_refused(tmp_path):
    path = tmp_path / "broken.srt"
    path.write_text("1\n00:00:01 - 00:00:02\nHola.\n\nplain text, no timing\n", encoding="utf-8")
    with pytest.raises(DataError) as error:
        custom.load_text(path, text_params())
    assert str(error.value) == (f"{path}: no subtitle cue found (expected 'N', "
                                "'hh:mm:ss,mmm --> hh:mm:ss,mmm', text lines)")
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.txt").write_text("Primero.\n", encoding="utf-8")
    (folder / "z.srt").write_bytes(path.read_bytes())
    with pytest.raises(DataError, match=r"z.srt: no subtitle cue found"):
        custom.load_text(folder, text_params())


def test_subtitle_file_gets_the_encoding_and_size_checks_of_text_files(tmp_path):
    path = tmp_path / "latin.srt"
    path.write_bytes("1\n00:00:01,000 --> 00:00:02,000\nCafé.\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin.srt: not valid utf-8 at line 3 \(byte 35\)"):
        custom.load_text(path, text_params())
    assert custom.load_text(path, text_params(encoding="latin-1")) == "Café.\n"
    with pytest.raises(DataError, match=r"latin.srt: 0 MB is over the memory budget of 1e-05 MB"):
        custom.load_text(path, text_params(max_megabytes=0.00001))
